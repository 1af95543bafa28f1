// SPDX-License-Identifier: MIT
/*
 * el-loader - loads, attaches, pins, switches and detaches the Electrode fast
 * paths (electrode.bpf.o) on one node. Run it INSIDE the node's network
 * namespace (`nsenter --net=/run/netns/<ns> -- el-loader ...`).
 *
 *   el-loader attach --pin-dir DIR --peers FILE --index I (--ifname IF | --ifmac MAC)
 *                    [--broadcast] [--quorum] [--reply] [--xdp-mode native|generic|auto]
 *   el-loader set    --pin-dir DIR [--broadcast on|off] [--quorum on|off] [--reply on|off]
 *   el-loader detach --pin-dir DIR (--ifname IF | --ifmac MAC)
 *   el-loader stats  --pin-dir DIR [--json]
 *   el-loader show   --pin-dir DIR --json
 *   el-loader ctrl   --pin-dir DIR [--view V] [--status S] [--leader L] [--last-op N]
 *                    [--commit C] [--fr-view V --fr-last-op N]
 *                    (writes el_ctrl/el_fr_state the way the replica does; for tests
 *                    and debugging without a replica)
 *   el-loader peer-pass --ifname IF [--off]
 *                    (netns labs, run in the switch namespace: native XDP_PASS on the
 *                    switch end of a node's veth so native XDP_TX frames are accepted)
 *   el-loader drain  --pin-dir DIR   (prints and consumes the el_fr_ring records as JSON
 *                    lines; for tests and debugging without a replica)
 *
 * Lifecycle as in libbpf-bootstrap: open -> size maps -> load -> fill maps ->
 * pin -> attach; one cleanup path. libbpf's output is buffered and only shown
 * (its tail) when something fails, followed by one actionable line.
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "../native/include/el_proto.h"
#include "el_bpf.h"

#define TC_HANDLE 0xe1
#define TC_PRIO 1

static const char *const MAP_NAMES[] = { "el_ctrl", "el_config", "el_peers", "el_fr_ring", "el_fr_state",
					 "el_stats", "el_qslots", "el_xdp_progs" };
static const char *const PROG_NAMES[] = { "el_xdp_dispatch", "el_xdp_quorum", "el_xdp_reply", "el_tc_egress" };
static const char *const STAT_NAMES[EL_PROG_MAX] = { "dispatch", "broadcast", "quorum", "reply" };

/* ---- libbpf log capture ------------------------------------------------- */

static char logbuf[16384];
static size_t loglen;

/* Appends to logbuf, keeping the tail: that is where the verifier's verdict is. */
static void log_append(const char *s, size_t n)
{
	const size_t cap = sizeof(logbuf) - 1;

	if (n >= cap) {
		s += n - cap;
		n = cap;
		loglen = 0;
	} else if (loglen + n > cap) {
		size_t drop = loglen + n - cap;

		memmove(logbuf, logbuf + drop, loglen - drop);
		loglen -= drop;
	}
	memcpy(logbuf + loglen, s, n);
	loglen += n;
	logbuf[loglen] = 0;
}

/* libbpf hands over the whole verifier log as ONE message: no fixed-size line buffer here. */
static int capture(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg;
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	n = vasprintf(&msg, fmt, ap);
	if (n < 0)
		return 0;
	log_append(msg, (size_t)n);
	free(msg);
	return 0;
}

static void print_log_tail(void)
{
	const char *p = logbuf + loglen;
	int lines = 0;

	while (p > logbuf && lines < 25) {
		p--;
		if (*p == '\n')
			lines++;
	}
	if (loglen)
		fprintf(stderr, "--- libbpf log (tail) ---\n%s%s", p == logbuf ? p : p + 1,
			logbuf[loglen - 1] == '\n' ? "" : "\n");
}

/* The kernel's extack message for the last netlink failure, if libbpf logged one. */
static const char *kernel_reason(void)
{
	static char reason[256];
	const char *k = NULL, *p = logbuf;

	while ((p = strstr(p, "Kernel error message: ")) != NULL) {
		k = p + strlen("Kernel error message: ");
		p = k;
	}
	if (!k)
		return NULL;
	snprintf(reason, sizeof(reason), "%.*s", (int)strcspn(k, "\n"), k);
	return reason;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	print_log_tail();
	fputs("el-loader: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ---- options ------------------------------------------------------------- */

struct opts {
	const char *cmd, *pin_dir, *peers, *ifname, *ifmac, *obj, *xdp_mode;
	long index;
	bool json, off;
	/* attach: bits to enable; set: which bits to change and to what */
	__u32 enable, set_mask, set_val;
	/* ctrl */
	bool has_view, has_status, has_leader, has_last_op, has_commit, has_fr_view, has_fr_last;
	__u64 view, last_op, commit, fr_view, fr_last;
	__u32 status, leader;
};

static __u64 parse_u64(const char *flag, const char *v)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || !*v || v[0] == '-')
		die("%s %s: not a whole number >= 0", flag, v);
	return x;
}

static void on_off(struct opts *o, const char *flag, const char *v, __u32 bit)
{
	o->set_mask |= bit;
	if (!strcmp(v, "on"))
		o->set_val |= bit;
	else if (strcmp(v, "off"))
		die("%s %s: expected on or off", flag, v);
}

static void usage(void)
{
	fputs("usage: el-loader attach --pin-dir DIR --peers FILE --index I (--ifname IF | --ifmac MAC)\n"
	      "                        [--broadcast] [--quorum] [--reply] [--xdp-mode native|generic|auto]\n"
	      "       el-loader set    --pin-dir DIR [--broadcast on|off] [--quorum on|off] [--reply on|off]\n"
	      "       el-loader detach --pin-dir DIR (--ifname IF | --ifmac MAC)\n"
	      "       el-loader stats  --pin-dir DIR [--json]\n"
	      "       el-loader show   --pin-dir DIR --json\n"
	      "       el-loader ctrl   --pin-dir DIR [--view V] [--status S] [--leader L] [--last-op N] [--commit C]\n"
	      "                        [--fr-view V] [--fr-last-op N]\n",
	      stderr);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	enum { O_PIN = 256, O_PEERS, O_INDEX, O_IFNAME, O_IFMAC, O_OBJ, O_MODE, O_JSON, O_BC, O_Q, O_R, O_VIEW,
	       O_STATUS, O_LEADER, O_LAST, O_COMMIT, O_FRV, O_FRL, O_OFF };
	static const struct option lo[] = {
		{ "pin-dir", required_argument, 0, O_PIN },     { "peers", required_argument, 0, O_PEERS },
		{ "index", required_argument, 0, O_INDEX },     { "ifname", required_argument, 0, O_IFNAME },
		{ "ifmac", required_argument, 0, O_IFMAC },     { "obj", required_argument, 0, O_OBJ },
		{ "xdp-mode", required_argument, 0, O_MODE },   { "json", no_argument, 0, O_JSON },
		{ "broadcast", optional_argument, 0, O_BC },    { "quorum", optional_argument, 0, O_Q },
		{ "reply", optional_argument, 0, O_R },         { "view", required_argument, 0, O_VIEW },
		{ "status", required_argument, 0, O_STATUS },   { "leader", required_argument, 0, O_LEADER },
		{ "last-op", required_argument, 0, O_LAST },    { "commit", required_argument, 0, O_COMMIT },
		{ "off", no_argument, 0, O_OFF },               { "fr-view", required_argument, 0, O_FRV },     { "fr-last-op", required_argument, 0, O_FRL },
		{ 0, 0, 0, 0 },
	};
	bool is_set;
	int c, i;

	if (argc < 2) {
		usage();
		exit(2);
	}
	o->cmd = argv[1];
	o->index = -1;
	o->xdp_mode = "auto";
	is_set = !strcmp(o->cmd, "set");
	/* `set --broadcast on` takes a separate word; make getopt see it */
	for (i = 2; is_set && i + 1 < argc; i++) {
		if ((!strcmp(argv[i], "--broadcast") || !strcmp(argv[i], "--quorum") || !strcmp(argv[i], "--reply")) &&
		    argv[i + 1][0] != '-') {
			char *joined;

			if (asprintf(&joined, "%s=%s", argv[i], argv[i + 1]) < 0)
				die("out of memory");
			argv[i] = joined;
			memmove(&argv[i + 1], &argv[i + 2], (size_t)(argc - i - 2) * sizeof(char *));
			argc--;
		}
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_PIN: o->pin_dir = optarg; break;
		case O_PEERS: o->peers = optarg; break;
		case O_INDEX: o->index = (long)parse_u64("--index", optarg); break;
		case O_IFNAME: o->ifname = optarg; break;
		case O_IFMAC: o->ifmac = optarg; break;
		case O_OBJ: o->obj = optarg; break;
		case O_MODE: o->xdp_mode = optarg; break;
		case O_JSON: o->json = true; break;
		case O_OFF: o->off = true; break;
		case O_BC: case O_Q: case O_R: {
			__u32 bit = c == O_BC ? EL_FP_BROADCAST : c == O_Q ? EL_FP_QUORUM : EL_FP_REPLY;
			const char *flag = c == O_BC ? "--broadcast" : c == O_Q ? "--quorum" : "--reply";

			if (is_set) {
				if (!optarg)
					die("%s needs on or off with `set`", flag);
				on_off(o, flag, optarg, bit);
			} else {
				if (optarg)
					die("%s takes no value with `%s`", flag, o->cmd);
				o->enable |= bit;
			}
			break;
		}
		case O_VIEW: o->has_view = true; o->view = parse_u64("--view", optarg); break;
		case O_STATUS: o->has_status = true; o->status = (__u32)parse_u64("--status", optarg); break;
		case O_LEADER: o->has_leader = true; o->leader = (__u32)parse_u64("--leader", optarg); break;
		case O_LAST: o->has_last_op = true; o->last_op = parse_u64("--last-op", optarg); break;
		case O_COMMIT: o->has_commit = true; o->commit = parse_u64("--commit", optarg); break;
		case O_FRV: o->has_fr_view = true; o->fr_view = parse_u64("--fr-view", optarg); break;
		case O_FRL: o->has_fr_last = true; o->fr_last = parse_u64("--fr-last-op", optarg); break;
		default:
			usage();
			exit(2);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	if (!o->pin_dir && strcmp(o->cmd, "peer-pass"))
		die("%s: --pin-dir DIR is required (the node's pinDir from the lab plan)", o->cmd);
}

/* ---- environment checks --------------------------------------------------- */

static void check_root(void)
{
	if (geteuid() != 0)
		die("must run as root: loading eBPF and attaching XDP/TC needs CAP_SYS_ADMIN and CAP_NET_ADMIN (use sudo)");
}

/* The pin dir must live on a bpffs: check its nearest existing ancestor. */
static void check_bpffs(const char *dir)
{
	char path[PATH_MAX];
	struct statfs st;

	snprintf(path, sizeof(path), "%s", dir);
	for (;;) {
		if (statfs(path, &st) == 0)
			break;
		char *slash = strrchr(path, '/');

		if (!slash || slash == path) {
			snprintf(path, sizeof(path), "/");
			if (statfs(path, &st))
				die("statfs /: %s", strerror(errno));
			break;
		}
		*slash = 0;
	}
	if ((unsigned long)st.f_type != BPF_FS_MAGIC)
		die("%s is not on a bpf filesystem (%s is not bpffs): mount it with `mount -t bpf bpf /sys/fs/bpf`; "
		    "inside `ip netns exec` /sys is remounted, enter the namespace with `nsenter --net=/run/netns/<ns>` instead",
		    dir, path);
}

static void mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	char *p;

	snprintf(path, sizeof(path), "%s", dir);
	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0700) && errno != EEXIST)
			die("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		die("mkdir %s: %s", path, strerror(errno));
}

/* ---- peers file ------------------------------------------------------------ */

struct peers {
	__u32 n, f;
	struct el_peer p[EL_MAX_REPLICAS];
	bool seen[EL_MAX_REPLICAS];
};

static bool parse_mac(const char *s, __u8 mac[6])
{
	unsigned int b[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		mac[i] = (__u8)b[i];
	return true;
}

static void read_peers(const char *file, struct peers *pt)
{
	char line[512];
	FILE *fp = fopen(file, "r");
	int ln = 0;
	bool have_cluster = false;

	if (!fp)
		die("peers file %s: %s; it is the lab's files/peers.table (run `electrode-lab up` first)", file,
		    strerror(errno));
	memset(pt, 0, sizeof(*pt));
	while (fgets(line, sizeof(line), fp)) {
		char w0[32], w2[64], w3[64];
		unsigned long a, b, port;
		struct in_addr ip;
		int n;

		ln++;
		n = sscanf(line, "%31s", w0);
		if (n != 1 || w0[0] == '#')
			continue;
		if (!strcmp(w0, "cluster")) {
			char extra[8];

			if (sscanf(line, "%*s %lu %lu %7s", &a, &b, extra) != 2)
				die("%s:%d: expected `cluster <n> <f>`", file, ln);
			if (a < 1 || a > EL_MAX_REPLICAS)
				die("%s:%d: cluster size %lu out of range 1..%d", file, ln, a, EL_MAX_REPLICAS);
			if (2 * b + 1 > a)
				die("%s:%d: f=%lu needs at least %lu replicas, cluster has %lu", file, ln, b, 2 * b + 1, a);
			pt->n = (__u32)a;
			pt->f = (__u32)b;
			have_cluster = true;
		} else if (!strcmp(w0, "peer")) {
			char extra[8];

			if (!have_cluster)
				die("%s:%d: `peer` before the `cluster <n> <f>` line", file, ln);
			if (sscanf(line, "%*s %lu %63s %63s %lu %7s", &a, w2, w3, &port, extra) != 4)
				die("%s:%d: expected `peer <index> <ipv4> <mac> <port>`", file, ln);
			if (a >= pt->n)
				die("%s:%d: peer index %lu out of range 0..%u", file, ln, a, pt->n - 1);
			if (pt->seen[a])
				die("%s:%d: peer %lu listed twice", file, ln, a);
			if (inet_pton(AF_INET, w2, &ip) != 1)
				die("%s:%d: '%s' is not an IPv4 address", file, ln, w2);
			if (!parse_mac(w3, pt->p[a].mac))
				die("%s:%d: '%s' is not a MAC address (aa:bb:cc:dd:ee:ff)", file, ln, w3);
			if (port < 1 || port > 65535)
				die("%s:%d: port %lu out of range 1..65535", file, ln, port);
			pt->p[a].ip = ip.s_addr;
			pt->p[a].port = htons((__u16)port);
			pt->seen[a] = true;
		} else {
			die("%s:%d: unknown line starting with '%s' (expected cluster, peer or #comment)", file, ln, w0);
		}
	}
	fclose(fp);
	if (!have_cluster)
		die("%s: no `cluster <n> <f>` line; regenerate it with `electrode-lab up`", file);
	for (__u32 i = 0; i < pt->n; i++)
		if (!pt->seen[i])
			die("%s: no `peer %u ...` line for a cluster of %u", file, i, pt->n);
}

/* ---- interfaces -------------------------------------------------------------- */

/* Resolves --ifname or --ifmac; fills name (IF_NAMESIZE) and mac. Returns 0 if absent and !must. */
static int find_ifindex(const struct opts *o, char name[IF_NAMESIZE], __u8 mac[6], bool must)
{
	struct ifaddrs *ifa, *it;
	__u8 want[6];
	int idx = 0;

	if (!o->ifname && !o->ifmac)
		die("%s: give the lab interface with --ifname IF (netns) or --ifmac MAC (VMs)", o->cmd);
	if (o->ifmac && !parse_mac(o->ifmac, want))
		die("--ifmac %s: not a MAC address (aa:bb:cc:dd:ee:ff)", o->ifmac);
	if (getifaddrs(&ifa))
		die("getifaddrs: %s", strerror(errno));
	for (it = ifa; it; it = it->ifa_next) {
		struct sockaddr_ll *ll = (struct sockaddr_ll *)it->ifa_addr;

		if (!ll || ll->sll_family != AF_PACKET || ll->sll_halen != 6)
			continue;
		if (o->ifname ? !strcmp(it->ifa_name, o->ifname) : !memcmp(ll->sll_addr, want, 6)) {
			idx = ll->sll_ifindex;
			snprintf(name, IF_NAMESIZE, "%s", it->ifa_name);
			memcpy(mac, ll->sll_addr, 6);
			break;
		}
	}
	freeifaddrs(ifa);
	if (!idx && must) {
		if (o->ifname)
			die("interface '%s' not found in this network namespace: run el-loader inside the node "
			    "(`nsenter --net=/run/netns/<ns> -- el-loader ...`) and check `ip -br link`", o->ifname);
		die("no interface with MAC %s in this network namespace/VM: check the plan's MAC against `ip -br link`",
		    o->ifmac);
	}
	return idx;
}

static bool prog_name_by_id(__u32 id, char name[BPF_OBJ_NAME_LEN])
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd;

	name[0] = 0;
	if (!id)
		return false;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		close(fd);
		return false;
	}
	close(fd);
	snprintf(name, BPF_OBJ_NAME_LEN, "%s", info.name);
	return true;
}

static bool is_ours(__u32 id)
{
	char name[BPF_OBJ_NAME_LEN];

	return prog_name_by_id(id, name) && !strncmp(name, "el_", 3);
}

/* Removes our XDP and TC programs from ifindex; leaves other people's alone. */
static void detach_ifindex(int ifindex, const char *ifname)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tco, .handle = TC_HANDLE, .priority = TC_PRIO);
	int err;

	if (!bpf_xdp_query(ifindex, 0, &q)) {
		if (q.drv_prog_id && is_ours(q.drv_prog_id) && (err = bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL)))
			die("detach native XDP from %s: %s", ifname, strerror(-err));
		if (q.skb_prog_id && is_ours(q.skb_prog_id) && (err = bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, NULL)))
			die("detach generic XDP from %s: %s", ifname, strerror(-err));
	}
	if (!bpf_tc_query(&hook, &tco) && is_ours(tco.prog_id)) {
		tco.prog_id = 0;
		tco.prog_fd = 0;
		tco.flags = 0;
		err = bpf_tc_detach(&hook, &tco);
		if (err && err != -ENOENT)
			die("detach tc egress filter from %s: %s", ifname, strerror(-err));
	}
}

/* Removes our pins (maps, programs) and the pin dir; also what a crashed run left. */
static void unpin_all(const char *dir)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(MAP_NAMES) / sizeof(MAP_NAMES[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, MAP_NAMES[i]);
		if (unlink(path) && errno != ENOENT)
			die("unpin %s: %s", path, strerror(errno));
	}
	for (i = 0; i < sizeof(PROG_NAMES) / sizeof(PROG_NAMES[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, PROG_NAMES[i]);
		if (unlink(path) && errno != ENOENT)
			die("unpin %s: %s", path, strerror(errno));
	}
	/* the node dir, then the lab dir if that was the last node */
	snprintf(path, sizeof(path), "%s", dir);
	for (i = 0; i < 2; i++) {
		char *slash;

		if (rmdir(path) && errno != ENOENT) {
			if (i == 0 && errno == ENOTEMPTY)
				fprintf(stderr, "el-loader: warning: %s holds pins that are not ours; left it in place\n", path);
			break;
		}
		slash = strrchr(path, '/');
		if (!slash || slash == path)
			break;
		*slash = 0;
	}
}

/* For the virtio-net TX queue hint: how many combined channels the NIC has. */
static bool channels(const char *ifname, __u32 *cur, __u32 *max)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ch;
	ok = ioctl(fd, SIOCETHTOOL, &ifr) == 0;
	close(fd);
	*cur = ch.combined_count;
	*max = ch.max_combined;
	return ok;
}

static void xdp_hint(const char *ifname, const char *reason, char *out, size_t len)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	__u32 cur = 0, max = 0;

	if (reason && (strstr(reason, "TX rings") || strstr(reason, "queues"))) {
		if (channels(ifname, &cur, &max) && max > (__u32)cpus)
			snprintf(out, len,
				 "native XDP needs %ld spare TX queues (one per CPU), the NIC has %u with %u in use: raise the "
				 "VM's driver queues or run `ethtool -L %s combined %ld`",
				 cpus, max, cur, ifname, (long)max - cpus);
		else
			snprintf(out, len,
				 "native XDP needs queue pairs + CPUs (%ld) <= the NIC's max queues (%u): raise the VM's driver "
				 "queues (libvirt__driver_queues) to at least %ld",
				 cpus, max, 2 * cpus);
	} else if (reason && strstr(reason, "MTU")) {
		snprintf(out, len, "lower the MTU so a frame fits one page with headroom: `ip link set %s mtu 3000` (the "
			 "lab spec's mtu)", ifname);
	} else if (reason && (strstr(reason, "LRO") || strstr(reason, "CSUM"))) {
		snprintf(out, len, "turn off the offloads the host implements: `ethtool -K %s lro off` or give the VM NIC "
			 "<guest tso4='off' tso6='off' ecn='off' ufo='off' csum='off'/>", ifname);
	} else {
		snprintf(out, len, "use --xdp-mode generic (slower: runs after the skb is built)");
	}
}

/* ---- map access on pins ------------------------------------------------------ */

static int open_pin(const char *dir, const char *name, bool must)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0 && must)
		die("%s: %s; attach the fast paths first with `electrode-lab attach`", path, strerror(errno));
	return fd;
}

static void read_stats(int fd, struct el_stat out[EL_PROG_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	struct el_stat *per;

	if (ncpu <= 0)
		die("cannot count possible CPUs: %s", strerror(-ncpu));
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per)
		die("out of memory");
	memset(out, 0, sizeof(struct el_stat) * EL_PROG_MAX);
	for (__u32 k = 0; k < EL_PROG_MAX; k++) {
		if (bpf_map_lookup_elem(fd, &k, per))
			die("read el_stats[%u]: %s", k, strerror(errno));
		for (int c = 0; c < ncpu; c++) {
			out[k].seen += per[c].seen;
			out[k].passed += per[c].passed;
			out[k].dropped += per[c].dropped;
			out[k].cloned += per[c].cloned;
			out[k].replied += per[c].replied;
			out[k].errors += per[c].errors;
		}
	}
	free(per);
}

static void print_stats_json(const struct el_stat s[EL_PROG_MAX])
{
	printf("{");
	for (int k = 0; k < EL_PROG_MAX; k++)
		printf("%s\"%s\":{\"seen\":%llu,\"passed\":%llu,\"dropped\":%llu,\"cloned\":%llu,\"replied\":%llu,"
		       "\"errors\":%llu}",
		       k ? "," : "", STAT_NAMES[k], (unsigned long long)s[k].seen, (unsigned long long)s[k].passed,
		       (unsigned long long)s[k].dropped, (unsigned long long)s[k].cloned,
		       (unsigned long long)s[k].replied, (unsigned long long)s[k].errors);
	printf("}");
}

static void fp_list(__u32 enabled, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s%s", enabled & EL_FP_BROADCAST ? "broadcast," : "",
		 enabled & EL_FP_QUORUM ? "quorum," : "", enabled & EL_FP_REPLY ? "reply," : "",
		 enabled ? "" : "none");
	if (enabled)
		out[strlen(out) - 1] = 0;
}

/* ---- commands ---------------------------------------------------------------- */

static int cmd_attach(const struct opts *o)
{
	char ifname[IF_NAMESIZE], path[PATH_MAX], fps[64], hint[512];
	const char *mode_name = "native";
	struct bpf_object *obj = NULL;
	struct bpf_program *prog;
	struct bpf_map *map;
	struct peers pt;
	struct el_config cfg;
	struct el_ctrl ctl;
	__u8 mac[6];
	__u32 k = 0;
	int ifindex, err, fd, xdp_fd, tc_fd;
	bool hook_created = false, native;

	if (!o->peers)
		die("attach: --peers FILE is required (the lab's files/peers.table)");
	if (o->index < 0)
		die("attach: --index I is required (the node's replica index)");
	if (strcmp(o->xdp_mode, "native") && strcmp(o->xdp_mode, "generic") && strcmp(o->xdp_mode, "auto"))
		die("--xdp-mode %s: expected native, generic or auto", o->xdp_mode);
	check_root();
	read_peers(o->peers, &pt);
	if (o->index >= (long)pt.n)
		die("--index %ld out of range: the cluster in %s has replicas 0..%u", o->index, o->peers, pt.n - 1);
	check_bpffs(o->pin_dir);
	ifindex = find_ifindex(o, ifname, mac, true);

	/* a crashed run may have left programs and pins: replace them */
	detach_ifindex(ifindex, ifname);
	unpin_all(o->pin_dir);
	mkdir_p(o->pin_dir);
	loglen = 0; /* the queries above log "no qdisc" and the like: not news */
	logbuf[0] = 0;

	if (memcmp(mac, pt.p[o->index].mac, 6))
		fprintf(stderr, "el-loader: warning: %s has MAC %02x:%02x:%02x:%02x:%02x:%02x, the plan says another; "
			"fast replies use the interface's\n", ifname, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);

	obj = bpf_object__open_file(o->obj, NULL);
	if (!obj)
		die("open %s: %s; build it with `make -C bpf`", o->obj, strerror(errno));
	map = bpf_object__find_map_by_name(obj, "el_peers");
	if (!map || bpf_map__set_max_entries(map, pt.n))
		die("%s has no el_peers map to size: rebuild with `make -C bpf`", o->obj);
	err = bpf_object__load(obj);
	if (err)
		die("load %s into the kernel: %s (the verifier's verdict is above; Linux >= 5.8 is needed for the ring "
		    "buffer)",
		    o->obj, strerror(-err));

	/* fill the maps before anything is attached */
	memset(&cfg, 0, sizeof(cfg));
	cfg.n_replicas = pt.n;
	cfg.f = pt.f;
	cfg.my_idx = (__u32)o->index;
	cfg.enabled = o->enable;
	memcpy(cfg.my_mac, mac, 6);
	cfg.my_port = pt.p[o->index].port;
	cfg.my_ip = pt.p[o->index].ip;
	if (bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(obj, "el_config")), &k, &cfg, BPF_ANY))
		die("fill el_config: %s", strerror(errno));
	fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "el_peers"));
	for (__u32 i = 0; i < pt.n; i++) {
		pt.p[i].ifindex = (__u32)ifindex;
		if (bpf_map_update_elem(fd, &i, &pt.p[i], BPF_ANY))
			die("fill el_peers[%u]: %s", i, strerror(errno));
	}
	/* view 0, leader 0, normal: what the replica will write on start anyway */
	memset(&ctl, 0, sizeof(ctl));
	ctl.my_idx = (__u32)o->index;
	ctl.n_replicas = pt.n;
	ctl.f = pt.f;
	if (bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(obj, "el_ctrl")), &k, &ctl, BPF_ANY))
		die("fill el_ctrl: %s", strerror(errno));
	fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "el_xdp_progs"));
	k = EL_PROG_QUORUM;
	tc_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "el_xdp_quorum"));
	if (bpf_map_update_elem(fd, &k, &tc_fd, BPF_ANY))
		die("fill el_xdp_progs: %s", strerror(errno));
	k = EL_PROG_REPLY;
	tc_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "el_xdp_reply"));
	if (bpf_map_update_elem(fd, &k, &tc_fd, BPF_ANY))
		die("fill el_xdp_progs: %s", strerror(errno));

	/* pin everything: the prog array keeps its entries only while referenced,
	 * and detach/stats/set run in new processes */
	bpf_object__for_each_map(map, obj) {
		snprintf(path, sizeof(path), "%s/%s", o->pin_dir, bpf_map__name(map));
		if ((err = bpf_map__pin(map, path)))
			goto fail_pin;
	}
	bpf_object__for_each_program(prog, obj) {
		snprintf(path, sizeof(path), "%s/%s", o->pin_dir, bpf_program__name(prog));
		if ((err = bpf_program__pin(prog, path)))
			goto fail_pin;
	}

	xdp_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "el_xdp_dispatch"));
	native = strcmp(o->xdp_mode, "generic") != 0;
	loglen = 0;
	logbuf[0] = 0;
	err = native ? bpf_xdp_attach(ifindex, xdp_fd, XDP_FLAGS_DRV_MODE, NULL) : -EAGAIN;
	if (err && native) {
		const char *reason = kernel_reason();

		xdp_hint(ifname, reason, hint, sizeof(hint));
		if (!strcmp(o->xdp_mode, "native")) {
			unpin_all(o->pin_dir);
			die("attach el_xdp_dispatch to %s in native mode: %s%s%s; %s", ifname, strerror(-err),
			    reason ? ": kernel says: " : "", reason ? reason : "", hint);
		}
		fprintf(stderr,
			"el-loader: WARNING: native XDP refused on %s (%s%s%s); falling back to GENERIC mode, which is "
			"much slower. Fix: %s\n",
			ifname, strerror(-err), reason ? ": kernel says: " : "", reason ? reason : "", hint);
	}
	if (err) {
		mode_name = "generic";
		err = bpf_xdp_attach(ifindex, xdp_fd, XDP_FLAGS_SKB_MODE, NULL);
		if (err) {
			unpin_all(o->pin_dir);
			die("attach el_xdp_dispatch to %s in generic mode: %s", ifname, strerror(-err));
		}
	}

	{
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, tco, .handle = TC_HANDLE, .priority = TC_PRIO, .flags = BPF_TC_F_REPLACE);

		tco.prog_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "el_tc_egress"));
		/* the clsact qdisc may already exist (a previous run, another tool) */
		err = bpf_tc_hook_create(&hook);
		if (err && err != -EEXIST) {
			detach_ifindex(ifindex, ifname);
			unpin_all(o->pin_dir);
			die("create clsact qdisc on %s: %s; is sch_clsact available (`modprobe sch_ingress`)?", ifname,
			    strerror(-err));
		}
		hook_created = !err;
		err = bpf_tc_attach(&hook, &tco);
		if (err) {
			detach_ifindex(ifindex, ifname);
			unpin_all(o->pin_dir);
			die("attach el_tc_egress to %s egress (direct-action): %s", ifname, strerror(-err));
		}
	}
	fp_list(cfg.enabled, fps, sizeof(fps));
	printf("el-loader: attached el_xdp_dispatch (xdp %s) and el_tc_egress (tc egress%s) on %s (ifindex %d), "
	       "replica %ld of %u, f=%u, fast paths: %s, pins in %s\n",
	       mode_name, hook_created ? ", new clsact" : "", ifname, ifindex, o->index, pt.n, pt.f, fps, o->pin_dir);
	bpf_object__close(obj); /* attachments and pins keep everything alive */
	return 0;

fail_pin:
	unpin_all(o->pin_dir);
	die("pin %s: %s", path, strerror(-err));
}

static int cmd_set(const struct opts *o)
{
	struct el_config cfg;
	__u32 k = 0;
	char fps[64];
	int fd;

	check_root();
	check_bpffs(o->pin_dir);
	fd = open_pin(o->pin_dir, "el_config", true);
	if (bpf_map_lookup_elem(fd, &k, &cfg))
		die("read el_config: %s", strerror(errno));
	cfg.enabled = (cfg.enabled & ~o->set_mask) | (o->set_val & o->set_mask);
	if (bpf_map_update_elem(fd, &k, &cfg, BPF_ANY))
		die("write el_config: %s", strerror(errno));
	fp_list(cfg.enabled, fps, sizeof(fps));
	printf("el-loader: fast paths now: %s\n", fps);
	return 0;
}

static int cmd_detach(const struct opts *o)
{
	char ifname[IF_NAMESIZE] = "";
	__u8 mac[6];
	int ifindex;

	check_root();
	check_bpffs(o->pin_dir);
	/* idempotent: a vanished interface has nothing attached any more */
	ifindex = find_ifindex(o, ifname, mac, false);
	if (ifindex)
		detach_ifindex(ifindex, ifname);
	unpin_all(o->pin_dir);
	printf("el-loader: detached%s%s, pins under %s removed\n", ifindex ? " from " : " (interface gone)", ifname,
	       o->pin_dir);
	return 0;
}

static int cmd_stats(const struct opts *o)
{
	struct el_stat s[EL_PROG_MAX];

	check_root();
	check_bpffs(o->pin_dir);
	read_stats(open_pin(o->pin_dir, "el_stats", true), s);
	if (o->json) {
		print_stats_json(s);
		printf("\n");
		return 0;
	}
	printf("%-10s %12s %12s %12s %12s %12s %12s\n", "program", "seen", "passed", "dropped", "cloned", "replied",
	       "errors");
	for (int k = 0; k < EL_PROG_MAX; k++)
		printf("%-10s %12llu %12llu %12llu %12llu %12llu %12llu\n", STAT_NAMES[k], (unsigned long long)s[k].seen,
		       (unsigned long long)s[k].passed, (unsigned long long)s[k].dropped,
		       (unsigned long long)s[k].cloned, (unsigned long long)s[k].replied,
		       (unsigned long long)s[k].errors);
	return 0;
}

static __u32 pinned_prog_id(const char *dir, const char *name)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd = open_pin(dir, name, false);

	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.id = 0;
	close(fd);
	return info.id;
}

static int cmd_show(const struct opts *o)
{
	struct if_nameindex *ifs, *it;
	struct el_stat s[EL_PROG_MAX];
	struct el_config cfg;
	struct el_ctrl ctl;
	struct el_fr_state fr;
	__u32 k = 0, xdp_id, tc_id;
	bool first;

	check_root();
	check_bpffs(o->pin_dir);
	if (!o->json)
		die("show: only --json output exists; use `stats` for a table");
	xdp_id = pinned_prog_id(o->pin_dir, "el_xdp_dispatch");
	tc_id = pinned_prog_id(o->pin_dir, "el_tc_egress");
	printf("{\"pinDir\":\"%s\",\"pinned\":%s,\"attached\":[", o->pin_dir, xdp_id ? "true" : "false");
	/* find where our pinned programs are attached in this namespace */
	ifs = if_nameindex();
	first = true;
	for (it = ifs; it && it->if_index; it++) {
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)it->if_index, .attach_point = BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, tco, .handle = TC_HANDLE, .priority = TC_PRIO);
		char name[BPF_OBJ_NAME_LEN];

		if (!bpf_xdp_query((int)it->if_index, 0, &q)) {
			__u32 ids[2] = { q.drv_prog_id, q.skb_prog_id };

			for (int m = 0; m < 2; m++) {
				if (!ids[m] || !prog_name_by_id(ids[m], name) || strncmp(name, "el_", 3))
					continue;
				printf("%s{\"hook\":\"xdp\",\"mode\":\"%s\",\"ifname\":\"%s\",\"prog\":\"%s\",\"id\":%u,"
				       "\"current\":%s}",
				       first ? "" : ",", m ? "generic" : "native", it->if_name, name, ids[m],
				       ids[m] == xdp_id ? "true" : "false");
				first = false;
			}
		}
		if (!bpf_tc_query(&hook, &tco) && prog_name_by_id(tco.prog_id, name) && !strncmp(name, "el_", 3)) {
			printf("%s{\"hook\":\"tc\",\"mode\":\"egress\",\"ifname\":\"%s\",\"prog\":\"%s\",\"id\":%u,"
			       "\"current\":%s}",
			       first ? "" : ",", it->if_name, name, tco.prog_id, tco.prog_id == tc_id ? "true" : "false");
			first = false;
		}
	}
	if (ifs)
		if_freenameindex(ifs);
	printf("]");
	if (xdp_id) {
		int cfd = open_pin(o->pin_dir, "el_ctrl", true), gfd = open_pin(o->pin_dir, "el_config", true);
		int ffd = open_pin(o->pin_dir, "el_fr_state", true);
		char fps[64];

		if (bpf_map_lookup_elem(cfd, &k, &ctl) || bpf_map_lookup_elem(gfd, &k, &cfg) ||
		    bpf_map_lookup_elem(ffd, &k, &fr))
			die("read maps under %s: %s", o->pin_dir, strerror(errno));
		fp_list(cfg.enabled, fps, sizeof(fps));
		printf(",\"ctrl\":{\"view\":%llu,\"last_op\":%llu,\"commit\":%llu,\"status\":%u,\"my_idx\":%u,"
		       "\"leader_idx\":%u,\"n_replicas\":%u,\"f\":%u,\"gen\":%u}",
		       (unsigned long long)ctl.view, (unsigned long long)ctl.last_op, (unsigned long long)ctl.commit,
		       ctl.status, ctl.my_idx, ctl.leader_idx, ctl.n_replicas, ctl.f, ctl.gen);
		printf(",\"config\":{\"n_replicas\":%u,\"f\":%u,\"my_idx\":%u,\"enabled\":%u,\"fast_paths\":\"%s\","
		       "\"my_port\":%u}",
		       cfg.n_replicas, cfg.f, cfg.my_idx, cfg.enabled, fps, ntohs(cfg.my_port));
		printf(",\"fr_state\":{\"view\":%llu,\"last_op\":%llu}", (unsigned long long)fr.view,
		       (unsigned long long)fr.last_op);
		read_stats(open_pin(o->pin_dir, "el_stats", true), s);
		printf(",\"stats\":");
		print_stats_json(s);
	}
	printf("}\n");
	return 0;
}

static int cmd_ctrl(const struct opts *o)
{
	struct el_ctrl ctl;
	struct el_fr_state fr;
	__u32 k = 0;
	int fd;

	check_root();
	check_bpffs(o->pin_dir);
	fd = open_pin(o->pin_dir, "el_ctrl", true);
	if (bpf_map_lookup_elem(fd, &k, &ctl))
		die("read el_ctrl: %s", strerror(errno));
	if (o->has_view)
		ctl.view = o->view;
	if (o->has_status)
		ctl.status = o->status;
	if (o->has_leader)
		ctl.leader_idx = o->leader;
	if (o->has_last_op)
		ctl.last_op = o->last_op;
	if (o->has_commit)
		ctl.commit = o->commit;
	ctl.gen++;
	if (bpf_map_update_elem(fd, &k, &ctl, BPF_ANY))
		die("write el_ctrl: %s", strerror(errno));
	if (o->has_fr_view || o->has_fr_last) {
		fd = open_pin(o->pin_dir, "el_fr_state", true);
		if (bpf_map_lookup_elem(fd, &k, &fr))
			die("read el_fr_state: %s", strerror(errno));
		if (o->has_fr_view)
			fr.view = o->fr_view;
		if (o->has_fr_last)
			fr.last_op = o->fr_last;
		if (bpf_map_update_elem(fd, &k, &fr, BPF_ANY))
			die("write el_fr_state: %s", strerror(errno));
	}
	return 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
	const struct el_fr_record *rec = data;
	const struct el_hdr *h = (const void *)(rec + 1);

	(void)ctx;
	if (size < sizeof(*rec) + sizeof(*h) || rec->len < sizeof(*h)) {
		printf("{\"bad_record\":true,\"size\":%zu}\n", size);
		return 0;
	}
	printf("{\"len\":%u,\"magic_ok\":%s,\"type\":%u,\"replica\":%u,\"view\":%llu,\"opnum\":%llu,\"aux\":%u,"
	       "\"payload_len\":%u}\n",
	       rec->len, h->magic == EL_MAGIC ? "true" : "false", h->type, h->replica, (unsigned long long)h->view,
	       (unsigned long long)h->opnum, h->aux, h->payload_len);
	return 0;
}

static int cmd_drain(const struct opts *o)
{
	struct ring_buffer *rb;
	int n;

	check_root();
	check_bpffs(o->pin_dir);
	rb = ring_buffer__new(open_pin(o->pin_dir, "el_fr_ring", true), on_record, NULL, NULL);
	if (!rb)
		die("open ring buffer el_fr_ring: %s", strerror(errno));
	n = ring_buffer__consume(rb);
	ring_buffer__free(rb);
	if (n < 0)
		die("consume el_fr_ring: %s", strerror(-n));
	return 0;
}

static int cmd_peer_pass(const struct opts *o)
{
	char ifname[IF_NAMESIZE], path[PATH_MAX];
	struct bpf_object *obj;
	__u8 mac[6];
	int ifindex, err;

	check_root();
	if (!o->ifname)
		die("peer-pass: --ifname IF is required (the node's switchIf from the plan)");
	ifindex = find_ifindex(o, ifname, mac, !o->off);
	if (o->off) {
		if (ifindex)
			detach_ifindex(ifindex, ifname);
		return 0;
	}
	snprintf(path, sizeof(path), "%s", o->obj);
	snprintf(strrchr(path, '/') + 1, sizeof(path) - (size_t)(strrchr(path, '/') + 1 - path), "el_pass.bpf.o");
	obj = bpf_object__open_file(path, NULL);
	if (!obj)
		die("open %s: %s; build it with `make -C bpf`", path, strerror(errno));
	if ((err = bpf_object__load(obj)))
		die("load %s: %s", path, strerror(-err));
	err = bpf_xdp_attach(ifindex, bpf_program__fd(bpf_object__find_program_by_name(obj, "el_xdp_pass")),
			     XDP_FLAGS_DRV_MODE, NULL);
	if (err)
		die("attach el_xdp_pass to %s in native mode: %s%s%s", ifname, strerror(-err),
		    kernel_reason() ? ": kernel says: " : "", kernel_reason() ? kernel_reason() : "");
	bpf_object__close(obj);
	return 0;
}

int main(int argc, char **argv)
{
	static char objpath[PATH_MAX];
	struct opts o;

	memset(&o, 0, sizeof(o));
	parse_opts(argc, argv, &o);
	libbpf_set_print(capture);
	if (!o.obj) {
		/* the object sits next to the loader in bpf/build/ */
		ssize_t n = readlink("/proc/self/exe", objpath, sizeof(objpath) - 32);

		if (n <= 0)
			die("cannot find my own path; pass --obj PATH/electrode.bpf.o");
		objpath[n] = 0;
		snprintf(strrchr(objpath, '/') + 1, 32, "electrode.bpf.o");
		if (access(objpath, R_OK)) {
			/* the sanitizer build lives in build/asan/, the objects in build/ */
			*strrchr(objpath, '/') = 0;
			snprintf(strrchr(objpath, '/') + 1, 32, "electrode.bpf.o");
		}
		o.obj = objpath;
	}
	if (!strcmp(o.cmd, "attach"))
		return cmd_attach(&o);
	if (!strcmp(o.cmd, "set"))
		return cmd_set(&o);
	if (!strcmp(o.cmd, "detach"))
		return cmd_detach(&o);
	if (!strcmp(o.cmd, "stats"))
		return cmd_stats(&o);
	if (!strcmp(o.cmd, "show"))
		return cmd_show(&o);
	if (!strcmp(o.cmd, "ctrl"))
		return cmd_ctrl(&o);
	if (!strcmp(o.cmd, "peer-pass"))
		return cmd_peer_pass(&o);
	if (!strcmp(o.cmd, "drain"))
		return cmd_drain(&o);
	usage();
	die("unknown command '%s'", o.cmd);
}
