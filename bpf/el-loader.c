// SPDX-License-Identifier: MIT
/*
 * el-loader - loads, attaches, pins, switches and detaches the Electrode fast
 * paths on one node. Run it INSIDE the node's network namespace
 * (`nsenter --net=/run/netns/<ns> -- el-loader ...`; `ip netns exec`
 * remounts /sys and hides the pins).
 *
 *   el-loader attach --pin-dir DIR --peers FILE --index I (--ifname IF | --ifmac MAC)
 *                    [--broadcast] [--quorum] [--reply] [--xdp-mode native|generic|auto] [--json]
 *   el-loader set    --pin-dir DIR [--broadcast on|off] [--quorum on|off] [--reply on|off]
 *   el-loader detach --pin-dir DIR (--ifname IF | --ifmac MAC)
 *   el-loader stats  --pin-dir DIR [--json]
 *   el-loader show   --pin-dir DIR --json
 *   el-loader ctrl   --pin-dir DIR [--view V] [--status S] [--lease-ms MS] [--last-op N]
 *                    [--commit C] [--fr-view V] [--fr-last-op N]
 *                    (writes el_ctrl/el_fr_state the way the replica does; tests, debugging)
 *   el-loader drain  --pin-dir DIR   (consumes el_fr_ring, one JSON line per record)
 *   el-loader impair --pin-dir DIR --ifname IF [--loss PCT] [--dup PCT] | --off
 *                    (the bench nemesis on netns labs, in the switch namespace: drops or
 *                    duplicates UDP frames leaving IF at a rate; el_impair.bpf.c)
 *   el-loader peer-pass --ifname IF [--off]
 *                    (netns labs, in the switch namespace: native XDP_PASS on the switch end
 *                    of a node's veth so that the node's native XDP_TX frames are accepted)
 *
 * Objects (libbpf-bootstrap's lifecycle, on generated skeletons): el_xdp
 * (the XDP dispatcher) is opened, sized and loaded first and owns the maps;
 * el_tc (the TC egress dispatcher), el_quorum, el_reply and el_broadcast are
 * each loaded on their own, reusing those maps. A fast path whose object this
 * kernel's verifier rejects is reported with the verifier's verdict and what
 * it means, and left out; the others still attach. Each command has its own
 * option table and one cleanup path. libbpf's output is buffered and shown
 * (its tail) only when something fails.
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
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "../native/include/el_proto.h"
#include "el_bpf.h"
#include "el_xdp.skel.h"
#include "el_tc.skel.h"
#include "el_quorum.skel.h"
#include "el_reply.skel.h"
#include "el_broadcast.skel.h"
#include "el_impair.skel.h"

#define TC_HANDLE 0xe1
#define TC_PRIO 1

/* ---- libbpf log capture, errors ----------------------------------------- */

static char logbuf[32768];
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

static void log_reset(void)
{
	loglen = 0;
	logbuf[0] = 0;
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

/* The last `lines` lines of the captured log. */
static const char *log_tail(int lines)
{
	const char *p = logbuf + loglen;

	while (p > logbuf && lines >= 0) {
		p--;
		if (*p == '\n')
			lines--;
	}
	return p == logbuf ? p : p + 1;
}

static void print_log_tail(void)
{
	if (!loglen)
		return;
	fprintf(stderr, "--- libbpf log (tail) ---\n%s%s", log_tail(25), logbuf[loglen - 1] == '\n' ? "" : "\n");
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

/* Prints the libbpf log tail and one actionable line; returns -1 for `return fail(...)`. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	print_log_tail();
	log_reset();
	fputs("el-loader: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/*
 * What a verifier log means, in words: the known ways our objects were
 * refused on some kernel (each seen for real, see bpf/README.md), else the
 * last line as it is. Never a guess about the kernel version.
 */
static const char *explain_verifier(const char *log)
{
	static const struct { const char *pattern, *meaning; } known[] = {
		{ "invalid mem access 'inv'",
		  "a pointer lost its type: this verifier does not keep pointers that were spilled to the stack "
		  "for that kind of memory (on 5.8: the bpf_ringbuf_reserve() result, PTR_TO_MEM); keep such a pointer "
		  "in a register or use a map value" },
		{ "unbounded min value",
		  "pointer arithmetic with a value whose range this verifier lost (on 5.8 and 6.1: the result of a byte "
		  "swap); bound it with an instruction the verifier sees (an asm mask)" },
		{ "unknown func", "the program calls a helper this kernel does not have" },
		{ "invalid func", "the program calls a helper this kernel does not have" },
		{ "BPF program is too large", "the verifier's complexity limit (1M instructions) was reached" },
		{ "back-edge", "a loop this verifier cannot bound (bounded loops need Linux 5.3)" },
		{ "invalid argument", "a map or program type this kernel does not support" },
		{ "R1 type=ctx expected=fp", "a helper got the wrong kind of argument on this kernel" },
		{ "Arg#0 type PTR", "a non-inlined function taking the context: without kernel BTF it must be inlined" },
		{ "combined stack size", "the stack of the program and its tail calls is larger than this kernel allows" },
	};
	static char last[256];
	const char *end, *start;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strstr(log, known[i].pattern))
			return known[i].meaning;
	/* the last non-empty line that is not libbpf's own framing */
	end = log + strlen(log);
	while (end > log) {
		while (end > log && (end[-1] == '\n' || end[-1] == ' '))
			end--;
		start = end;
		while (start > log && start[-1] != '\n')
			start--;
		if (end > start && !strstr(start, "libbpf:") && !strstr(start, "END PROG LOAD LOG") &&
		    !strstr(start, "processed ")) {
			snprintf(last, sizeof(last), "%.*s", (int)(end - start), start);
			return last;
		}
		end = start;
	}
	return "no verifier output";
}

/* ---- options shared by the commands ---------------------------------------- */

static int parse_u64(const char *flag, const char *v, __u64 *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || !*v || v[0] == '-')
		return fail("%s %s: not a whole number >= 0", flag, v);
	*out = x;
	return 0;
}

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

/* The options several commands take; each command's table says which. */
enum { O_PIN = 256, O_PEERS, O_INDEX, O_IFNAME, O_IFMAC, O_MODE, O_HOOK, O_JSON, O_BC, O_Q, O_R, O_VIEW, O_STATUS,
       O_LEASE, O_LAST, O_COMMIT, O_FRV, O_FRL, O_OFF, O_LOSS, O_DUP };

struct common {
	const char *pin_dir, *ifname, *ifmac;
	bool json;
};

/* Handles the options common to several commands; 1 = not one of them. */
static int common_opt(int c, struct common *o)
{
	switch (c) {
	case O_PIN: o->pin_dir = optarg; return 0;
	case O_IFNAME: o->ifname = optarg; return 0;
	case O_IFMAC: o->ifmac = optarg; return 0;
	case O_JSON: o->json = true; return 0;
	default: return 1;
	}
}

static int parse_cmd(int argc, char **argv, const struct option *table, const char *usage,
		     int (*each)(int c, void *ctx), void *ctx)
{
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", table, NULL)) != -1) {
		if (c == '?' || each(c, ctx))
			return fail("usage: %s", usage);
	}
	if (optind < argc)
		return fail("unexpected argument '%s'; usage: %s", argv[optind], usage);
	return 0;
}

static int need_pin_dir(const char *cmd, const struct common *o)
{
	if (!o->pin_dir)
		return fail("%s: --pin-dir DIR is required (the node's pinDir from the lab plan)", cmd);
	return 0;
}

/* ---- environment checks, pins ---------------------------------------------- */

static int check_root(void)
{
	if (geteuid() != 0)
		return fail("must run as root: loading eBPF and attaching XDP/TC needs CAP_SYS_ADMIN and CAP_NET_ADMIN "
			    "(use sudo)");
	return 0;
}

/* The pin dir must live on a bpffs: check its nearest existing ancestor. */
static int check_bpffs(const char *dir)
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
				return fail("statfs /: %s", strerror(errno));
			break;
		}
		*slash = 0;
	}
	if ((unsigned long)st.f_type != BPF_FS_MAGIC)
		return fail("%s is not on a bpf filesystem (%s is not bpffs): mount it with `mount -t bpf bpf /sys/fs/bpf`; "
			    "inside `ip netns exec` /sys is remounted, enter the namespace with `nsenter --net=/run/netns/<ns>` "
			    "instead",
			    dir, path);
	return 0;
}

static int root_and_bpffs(const char *dir)
{
	return check_root() || check_bpffs(dir) ? -1 : 0;
}

static int mkdir_p(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0700) && errno != EEXIST)
			return fail("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		return fail("mkdir %s: %s", path, strerror(errno));
	return 0;
}

/* Removes our pins (every entry named el_*: maps and programs) and the pin
 * dir, then the lab dir if that was the last node; also what a crashed run
 * left. Pins of other tools stay, with a warning. */
static int unpin_all(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(dir);
	int err = 0;

	if (!d)
		return errno == ENOENT ? 0 : fail("open %s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "el_", 3))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) && errno != ENOENT)
			err = fail("unpin %s: %s", path, strerror(errno));
	}
	closedir(d);
	snprintf(path, sizeof(path), "%s", dir);
	for (int i = 0; i < 2; i++) {
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
	return err;
}

/* A pinned map of this node, by the name the objects give it. */
static int open_pinned(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return fail("%s: %s; attach the fast paths first with `electrode-lab attach`", path, strerror(errno));
	return fd;
}

/* ---- peers file ------------------------------------------------------------ */

struct peers {
	__u32 n, f;
	struct el_peer p[EL_MAX_REPLICAS];
	bool seen[EL_MAX_REPLICAS];
};

static int read_peers(const char *file, struct peers *pt)
{
	char line[512];
	FILE *fp = fopen(file, "r");
	int ln = 0, err = -1;
	bool have_cluster = false;

	if (!fp)
		return fail("peers file %s: %s; it is the lab's files/peers.table (run `electrode-lab up` first)", file,
			    strerror(errno));
	memset(pt, 0, sizeof(*pt));
	while (fgets(line, sizeof(line), fp)) {
		char w0[32], w2[64], w3[64], extra[8];
		unsigned long a, b, port;
		struct in_addr ip;

		ln++;
		if (sscanf(line, "%31s", w0) != 1 || w0[0] == '#')
			continue;
		if (!strcmp(w0, "cluster")) {
			if (sscanf(line, "%*s %lu %lu %7s", &a, &b, extra) != 2) {
				fail("%s:%d: expected `cluster <n> <f>`", file, ln);
				goto out;
			}
			if (a < 1 || a > EL_MAX_REPLICAS) {
				fail("%s:%d: cluster size %lu out of range 1..%d", file, ln, a, EL_MAX_REPLICAS);
				goto out;
			}
			/* quorums of f+1 out of 2f+1 intersect; other sizes do not */
			if (2 * b + 1 != a) {
				fail("%s:%d: f=%lu with %lu replicas: quorums of f+1 intersect only with exactly 2f+1 = %lu replicas",
				     file, ln, b, a, 2 * b + 1);
				goto out;
			}
			pt->n = (__u32)a;
			pt->f = (__u32)b;
			have_cluster = true;
		} else if (!strcmp(w0, "peer")) {
			if (!have_cluster) {
				fail("%s:%d: `peer` before the `cluster <n> <f>` line", file, ln);
				goto out;
			}
			if (sscanf(line, "%*s %lu %63s %63s %lu %7s", &a, w2, w3, &port, extra) != 4) {
				fail("%s:%d: expected `peer <index> <ipv4> <mac> <port>`", file, ln);
				goto out;
			}
			if (a >= pt->n) {
				fail("%s:%d: peer index %lu out of range 0..%u", file, ln, a, pt->n - 1);
				goto out;
			}
			if (pt->seen[a]) {
				fail("%s:%d: peer %lu listed twice", file, ln, a);
				goto out;
			}
			if (inet_pton(AF_INET, w2, &ip) != 1) {
				fail("%s:%d: '%s' is not an IPv4 address", file, ln, w2);
				goto out;
			}
			if (!parse_mac(w3, pt->p[a].mac)) {
				fail("%s:%d: '%s' is not a MAC address (aa:bb:cc:dd:ee:ff)", file, ln, w3);
				goto out;
			}
			if (port < 1 || port > 65535) {
				fail("%s:%d: port %lu out of range 1..65535", file, ln, port);
				goto out;
			}
			pt->p[a].ip = ip.s_addr;
			pt->p[a].port = htons((__u16)port);
			pt->seen[a] = true;
		} else {
			fail("%s:%d: unknown line starting with '%s' (expected cluster, peer or #comment)", file, ln, w0);
			goto out;
		}
	}
	if (!have_cluster) {
		fail("%s: no `cluster <n> <f>` line; regenerate it with `electrode-lab up`", file);
		goto out;
	}
	for (__u32 i = 0; i < pt->n; i++) {
		if (!pt->seen[i]) {
			fail("%s: no `peer %u ...` line for a cluster of %u", file, i, pt->n);
			goto out;
		}
	}
	err = 0;
out:
	fclose(fp);
	return err;
}

/* ---- interfaces ---------------------------------------------------------------- */

/* Resolves --ifname or --ifmac; fills name (IF_NAMESIZE) and mac. Returns the
 * ifindex, 0 if absent and !must, -1 on an error (reported). */
static int find_ifindex(const char *cmd, const struct common *o, char name[IF_NAMESIZE], __u8 mac[6], bool must)
{
	struct ifaddrs *ifa, *it;
	__u8 want[6];
	int idx = 0;

	if (!o->ifname && !o->ifmac)
		return fail("%s: give the lab interface with --ifname IF (netns) or --ifmac MAC (VMs)", cmd);
	if (o->ifmac && !parse_mac(o->ifmac, want))
		return fail("--ifmac %s: not a MAC address (aa:bb:cc:dd:ee:ff)", o->ifmac);
	if (getifaddrs(&ifa))
		return fail("getifaddrs: %s", strerror(errno));
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
			return fail("interface '%s' not found in this network namespace: run el-loader inside the node "
				    "(`nsenter --net=/run/netns/<ns> -- el-loader ...`) and check `ip -br link`",
				    o->ifname);
		return fail("no interface with MAC %s in this network namespace/VM: check the plan's MAC against `ip -br link`",
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
static int detach_ifindex(int ifindex, const char *ifname)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tco, .handle = TC_HANDLE, .priority = TC_PRIO);
	int err;

	if (!bpf_xdp_query(ifindex, 0, &q)) {
		if (q.drv_prog_id && is_ours(q.drv_prog_id) && (err = bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL)))
			return fail("detach native XDP from %s: %s", ifname, strerror(-err));
		if (q.skb_prog_id && is_ours(q.skb_prog_id) && (err = bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, NULL)))
			return fail("detach generic XDP from %s: %s", ifname, strerror(-err));
	}
	for (int pass = 0; pass < 2; pass++) {
		hook.attach_point = pass ? BPF_TC_INGRESS : BPF_TC_EGRESS;
		tco.prog_id = 0;
		tco.prog_fd = 0;
		tco.flags = 0;
		if (!bpf_tc_query(&hook, &tco) && is_ours(tco.prog_id)) {
			tco.prog_id = 0;
			tco.prog_fd = 0;
			tco.flags = 0;
			err = bpf_tc_detach(&hook, &tco);
			if (err && err != -ENOENT)
				return fail("detach tc %s filter from %s: %s", pass ? "ingress" : "egress", ifname, strerror(-err));
		}
	}
	return 0;
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

/* ---- the objects ----------------------------------------------------------------- */

static const char *const FP_NAMES[] = { "broadcast", "quorum", "reply" };
static const __u32 FP_BITS[] = { EL_FP_BROADCAST, EL_FP_QUORUM, EL_FP_REPLY };
#define N_FP 3

static void fp_list(__u32 bits, char *out, size_t len)
{
	size_t o = 0;

	out[0] = 0;
	for (int i = 0; i < N_FP; i++)
		if (bits & FP_BITS[i])
			o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "", FP_NAMES[i]);
	if (!o)
		snprintf(out, len, "none");
}

/* The generated skeletons differ only in type: these adapters let one table
 * drive them. */
#define SKEL_OPS(x)                                                                              \
	static void *x##_open_(void) { return x##__open(); }                                     \
	static int x##_load_(void *s) { return x##__load(s); }                                   \
	static void x##_destroy_(void *s) { x##__destroy(s); }                                   \
	static struct bpf_object *x##_obj_(void *s) { return ((struct x *)s)->obj; }
SKEL_OPS(el_tc)
SKEL_OPS(el_quorum)
SKEL_OPS(el_reply)
SKEL_OPS(el_broadcast)

/* prog_fd(skel, tc): the program for the XDP hook, or (tc) its TC ingress
 * twin for veth; el_tc's "twin" is the TC ingress dispatcher. */
static int el_tc_fd_(void *s, bool tc)
{
	return bpf_program__fd(tc ? ((struct el_tc *)s)->progs.el_tc_ingress : ((struct el_tc *)s)->progs.el_tc_egress);
}
static int el_quorum_fd_(void *s, bool tc)
{
	return bpf_program__fd(tc ? ((struct el_quorum *)s)->progs.el_tci_quorum : ((struct el_quorum *)s)->progs.el_xdp_quorum);
}
static int el_reply_fd_(void *s, bool tc)
{
	return bpf_program__fd(tc ? ((struct el_reply *)s)->progs.el_tci_reply : ((struct el_reply *)s)->progs.el_xdp_reply);
}
static int el_broadcast_fd_(void *s, bool tc)
{
	(void)tc;
	return bpf_program__fd(((struct el_broadcast *)s)->progs.el_tc_broadcast);
}

enum tail { TAIL_NONE, TAIL_XDP, TAIL_TC };

struct part {
	const char *object;   /* el_tc, ... */
	__u32 needed_by;      /* fast paths lost when it is rejected */
	enum tail tail;       /* prog array it is a tail-call target in */
	__u32 slot;
	void *(*open)(void);
	int (*load)(void *);
	void (*destroy)(void *);
	struct bpf_object *(*obj)(void *);
	int (*prog_fd)(void *, bool tc);
};

#define PART(x, needs, t, k) { #x, needs, t, k, x##_open_, x##_load_, x##_destroy_, x##_obj_, x##_fd_ }
static const struct part PARTS[] = {
	/* the egress dispatcher arms quorum slots and hands marked frames to the fan-out */
	PART(el_tc, EL_FP_BROADCAST | EL_FP_QUORUM, TAIL_NONE, 0),
	PART(el_quorum, EL_FP_QUORUM, TAIL_XDP, EL_PROG_QUORUM),
	PART(el_reply, EL_FP_REPLY, TAIL_XDP, EL_PROG_REPLY),
	PART(el_broadcast, EL_FP_BROADCAST, TAIL_TC, EL_PROG_BROADCAST),
};
#define N_PARTS (sizeof(PARTS) / sizeof(PARTS[0]))

struct part_result {
	void *skel;
	bool ok;
	char verdict[1024];   /* the verifier's last lines */
	const char *meaning;
};

/* Opens part p, gives it the dispatcher's maps and loads it. On a refusal the
 * verifier's last lines and their meaning go into r and the part is left out. */
static void load_part(const struct part *p, struct bpf_object *maps_owner, struct part_result *r)
{
	const char *missing_map = NULL;
	struct bpf_map *m;

	memset(r, 0, sizeof(*r));
	log_reset();
	r->skel = p->open();
	if (!r->skel) {
		snprintf(r->verdict, sizeof(r->verdict), "cannot open the object: %s", strerror(errno));
		r->meaning = "rebuild with `make -C bpf`";
		return;
	}
	bpf_object__for_each_map(m, p->obj(r->skel)) {
		struct bpf_map *own = bpf_object__find_map_by_name(maps_owner, bpf_map__name(m));
		int err;

		if (own && bpf_map__fd(own) < 0) {
			/* not created by this kernel (the ring buffer before 5.8) */
			bpf_map__set_autocreate(m, false);
			missing_map = bpf_map__name(m);
			continue;
		}
		err = own ? bpf_map__reuse_fd(m, bpf_map__fd(own)) : -ENOENT;
		if (err) {
			snprintf(r->verdict, sizeof(r->verdict), "map %s: %s", bpf_map__name(m), strerror(-err));
			r->meaning = "the objects were built from different headers: rebuild with `make -C bpf`";
			goto refused;
		}
	}
	if (p->load(r->skel)) {
		snprintf(r->verdict, sizeof(r->verdict), "%s", log_tail(6));
		r->meaning = missing_map && strstr(logbuf, missing_map) ? "this kernel has no BPF ring buffer (Linux 5.8+)"
									  : explain_verifier(logbuf);
		goto refused;
	}
	r->ok = true;
	return;
refused:
	p->destroy(r->skel);
	r->skel = NULL;
}

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", out);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

static int pin_object(struct bpf_object *obj, const char *dir, bool maps)
{
	char path[PATH_MAX];
	struct bpf_program *prog;
	struct bpf_map *map;
	int err;

	if (maps) {
		bpf_object__for_each_map(map, obj) {
			snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
			if ((err = bpf_map__pin(map, path)))
				return fail("pin %s: %s", path, strerror(-err));
		}
	}
	bpf_object__for_each_program(prog, obj) {
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_program__name(prog));
		if ((err = bpf_program__pin(prog, path)))
			return fail("pin %s: %s", path, strerror(-err));
	}
	return 0;
}

/* ---- attach -------------------------------------------------------------------- */

struct attach_opts {
	struct common c;
	const char *peers, *xdp_mode, *hook;
	__u64 index;
	bool has_index;
	__u32 enable;
};

static const char ATTACH_USAGE[] =
	"el-loader attach --pin-dir DIR --peers FILE --index I (--ifname IF | --ifmac MAC)\n"
	"                        [--broadcast] [--quorum] [--reply] [--hook xdp|tc] [--xdp-mode native|generic|auto] [--json]\n"
	"  --hook tc: the ingress fast paths at TC ingress instead of XDP (veth: no XDP buffer conversion, no copy)";

static const struct option ATTACH_OPTIONS[] = {
	{ "pin-dir", required_argument, 0, O_PIN },   { "peers", required_argument, 0, O_PEERS },
	{ "index", required_argument, 0, O_INDEX },   { "ifname", required_argument, 0, O_IFNAME },
	{ "ifmac", required_argument, 0, O_IFMAC },   { "xdp-mode", required_argument, 0, O_MODE },
	{ "json", no_argument, 0, O_JSON },           { "broadcast", no_argument, 0, O_BC },
	{ "quorum", no_argument, 0, O_Q },            { "reply", no_argument, 0, O_R },
	{ "hook", required_argument, 0, O_HOOK },
	{ 0, 0, 0, 0 },
};

static int attach_opt(int c, void *ctx)
{
	struct attach_opts *o = ctx;

	switch (c) {
	case O_PEERS: o->peers = optarg; return 0;
	case O_INDEX: o->has_index = true; return parse_u64("--index", optarg, &o->index) ? -1 : 0;
	case O_MODE: o->xdp_mode = optarg; return 0;
	case O_HOOK: o->hook = optarg; return 0;
	case O_BC: o->enable |= EL_FP_BROADCAST; return 0;
	case O_Q: o->enable |= EL_FP_QUORUM; return 0;
	case O_R: o->enable |= EL_FP_REPLY; return 0;
	default: return common_opt(c, &o->c);
	}
}

static int cmd_attach(int argc, char **argv)
{
	struct attach_opts o = { .xdp_mode = "auto", .hook = "xdp" };
	struct part_result parts[N_PARTS];
	struct el_xdp *disp = NULL;
	struct peers pt;
	struct el_config cfg;
	struct el_ctrl ctl;
	char ifname[IF_NAMESIZE], hint[512], fps[64], lfps[64];
	const char *mode_name = "native";
	__u32 loaded = EL_FP_BROADCAST | EL_FP_QUORUM | EL_FP_REPLY, k = 0;
	__u8 mac[6];
	int ifindex, err, rc = 1, ncpu, fd;
	bool pinned = false, attached = false, hook_created = false, native, tc_hook;

	memset(parts, 0, sizeof(parts));
	if (parse_cmd(argc, argv, ATTACH_OPTIONS, ATTACH_USAGE, attach_opt, &o) || need_pin_dir("attach", &o.c))
		return 2;
	if (strcmp(o.xdp_mode, "native") && strcmp(o.xdp_mode, "generic") && strcmp(o.xdp_mode, "auto"))
		return fail("--xdp-mode %s: expected native, generic or auto", o.xdp_mode), 2;
	if (strcmp(o.hook, "xdp") && strcmp(o.hook, "tc"))
		return fail("--hook %s: expected xdp (the NIC's XDP hook) or tc (TC ingress, for veth)", o.hook), 2;
	tc_hook = !strcmp(o.hook, "tc");
	if (!o.peers)
		return fail("attach: --peers FILE is required (the lab's files/peers.table)"), 2;
	if (!o.has_index)
		return fail("attach: --index I is required (the node's replica index)"), 2;
	if (root_and_bpffs(o.c.pin_dir) || read_peers(o.peers, &pt))
		return 1;
	if (o.index >= pt.n)
		return fail("--index %llu out of range: the cluster in %s has replicas 0..%u", (unsigned long long)o.index,
			    o.peers, pt.n - 1), 1;
	ifindex = find_ifindex("attach", &o.c, ifname, mac, true);
	if (ifindex < 0)
		return 1;

	/* a crashed run may have left programs and pins: replace them */
	if (detach_ifindex(ifindex, ifname) || unpin_all(o.c.pin_dir) || mkdir_p(o.c.pin_dir))
		return 1;
	log_reset(); /* the queries above log "no qdisc" and the like: not news */
	if (memcmp(mac, pt.p[o.index].mac, 6))
		fprintf(stderr, "el-loader: warning: %s has MAC %02x:%02x:%02x:%02x:%02x:%02x, the plan says another; "
			"fast replies use the interface's\n", ifname, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);

	/* 1. the dispatcher, which owns the maps: without it nothing attaches */
	disp = el_xdp__open();
	if (!disp) {
		fail("open el_xdp: %s; rebuild with `make -C bpf`", strerror(errno));
		goto out;
	}
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0 || bpf_map__set_max_entries(disp->maps.el_peers, pt.n) ||
	    bpf_map__set_max_entries(disp->maps.EL_MAP_FR_BUSY, (__u32)ncpu)) {
		fail("size the maps (%u peers, %d CPUs): %s", pt.n, ncpu, strerror(errno));
		goto out;
	}
	/* the ring buffer came with 5.8: without it only the fast reply is lost */
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) <= 0)
		bpf_map__set_autocreate(disp->maps.EL_MAP_FR_RING, false);
	if ((err = el_xdp__load(disp))) {
		char verdict[1024];

		snprintf(verdict, sizeof(verdict), "%s", log_tail(6));
		fprintf(stderr, "%s%s", verdict, verdict[0] && verdict[strlen(verdict) - 1] != '\n' ? "\n" : "");
		log_reset();
		fail("the XDP dispatcher el_xdp was rejected (%s): %s; no fast path can attach", strerror(-err),
		     explain_verifier(verdict));
		goto out;
	}
	/* 2. each fast path on its own */
	for (size_t i = 0; i < N_PARTS; i++) {
		load_part(&PARTS[i], disp->obj, &parts[i]);
		if (!parts[i].ok) {
			loaded &= ~PARTS[i].needed_by;
			fprintf(stderr, "el-loader: %s REJECTED by this kernel's verifier: %s\n%s\n", PARTS[i].object,
				parts[i].meaning, parts[i].verdict);
		}
	}
	log_reset();

	/* 3. fill the maps before anything is attached */
	memset(&cfg, 0, sizeof(cfg));
	cfg.n_replicas = pt.n;
	cfg.f = pt.f;
	cfg.my_idx = (__u32)o.index;
	cfg.loaded = loaded;
	cfg.enabled = o.enable & loaded;
	memcpy(cfg.my_mac, mac, 6);
	cfg.my_port = pt.p[o.index].port;
	cfg.my_ip = pt.p[o.index].ip;
	do {
		if (getrandom(&cfg.quorum_token, sizeof(cfg.quorum_token), 0) != sizeof(cfg.quorum_token)) {
			fail("getrandom for the quorum token: %s", strerror(errno));
			goto out;
		}
	} while (!cfg.quorum_token);
	if (bpf_map_update_elem(bpf_map__fd(disp->maps.EL_MAP_CONFIG), &k, &cfg, BPF_ANY)) {
		fail("fill el_config: %s", strerror(errno));
		goto out;
	}
	fd = bpf_map__fd(disp->maps.el_peers);
	for (__u32 i = 0; i < pt.n; i++) {
		pt.p[i].ifindex = (__u32)ifindex;
		if (bpf_map_update_elem(fd, &i, &pt.p[i], BPF_ANY)) {
			fail("fill el_peers[%u]: %s", i, strerror(errno));
			goto out;
		}
	}
	/* view 0, normal, no lease: the fast reply waits for a replica to renew it */
	memset(&ctl, 0, sizeof(ctl));
	ctl.view_status = EL_VS(0, EL_STATUS_NORMAL);
	ctl.my_idx = (__u32)o.index;
	ctl.n_replicas = pt.n;
	ctl.f = pt.f;
	if (bpf_map_update_elem(bpf_map__fd(disp->maps.EL_MAP_CTRL), &k, &ctl, BPF_ANY)) {
		fail("fill el_ctrl: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < N_PARTS; i++) {
		int pfd, afd;

		if (!parts[i].ok || PARTS[i].tail == TAIL_NONE)
			continue;
		pfd = PARTS[i].prog_fd(parts[i].skel, tc_hook);
		/* with --hook tc the ingress fast paths are TC programs too */
		afd = bpf_map__fd(PARTS[i].tail == TAIL_XDP && !tc_hook ? disp->maps.el_xdp_progs : disp->maps.el_tc_progs);
		if (bpf_map_update_elem(afd, &PARTS[i].slot, &pfd, BPF_ANY)) {
			fail("fill the tail-call slot of %s: %s", PARTS[i].object, strerror(errno));
			goto out;
		}
	}

	/* 4. pin everything: the prog arrays keep their entries only while
	 * referenced, and detach/stats/set/the replica run in other processes */
	pinned = true;
	if (pin_object(disp->obj, o.c.pin_dir, true))
		goto out;
	for (size_t i = 0; i < N_PARTS; i++)
		if (parts[i].ok && pin_object(PARTS[i].obj(parts[i].skel), o.c.pin_dir, false))
			goto out;

	/* 5. attach XDP (or, --hook tc, the TC ingress dispatcher), then TC egress */
	if (tc_hook) {
		if (!parts[0].ok) {
			fail("--hook tc needs el_tc, which this kernel's verifier rejected (above)");
			goto out;
		}
		mode_name = "tc";
		goto tc;
	}
	native = strcmp(o.xdp_mode, "generic") != 0;
	log_reset();
	err = native ? bpf_xdp_attach(ifindex, bpf_program__fd(disp->progs.el_xdp_dispatch), XDP_FLAGS_DRV_MODE, NULL)
		     : -EAGAIN;
	if (err && native) {
		const char *reason = kernel_reason();

		xdp_hint(ifname, reason, hint, sizeof(hint));
		if (!strcmp(o.xdp_mode, "native")) {
			fail("attach el_xdp_dispatch to %s in native mode: %s%s%s; %s", ifname, strerror(-err),
			     reason ? ": kernel says: " : "", reason ? reason : "", hint);
			goto out;
		}
		fprintf(stderr,
			"el-loader: WARNING: native XDP refused on %s (%s%s%s); falling back to GENERIC mode, which is "
			"much slower. Fix: %s\n",
			ifname, strerror(-err), reason ? ": kernel says: " : "", reason ? reason : "", hint);
	}
	if (err) {
		mode_name = "generic";
		err = bpf_xdp_attach(ifindex, bpf_program__fd(disp->progs.el_xdp_dispatch), XDP_FLAGS_SKB_MODE, NULL);
		if (err) {
			fail("attach el_xdp_dispatch to %s in generic mode: %s", ifname, strerror(-err));
			goto out;
		}
	}
tc:
	attached = true;
	if (parts[0].ok) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, tco, .handle = TC_HANDLE, .priority = TC_PRIO, .flags = BPF_TC_F_REPLACE);

		tco.prog_fd = PARTS[0].prog_fd(parts[0].skel, false);
		/* the clsact qdisc may already exist (a previous run, another tool) */
		err = bpf_tc_hook_create(&hook);
		if (err && err != -EEXIST) {
			fail("create clsact qdisc on %s: %s; does this kernel have sch_clsact (`modprobe sch_ingress`)?", ifname,
			     strerror(-err));
			goto out;
		}
		hook_created = !err;
		if ((err = bpf_tc_attach(&hook, &tco))) {
			fail("attach el_tc_egress to %s egress (direct-action): %s", ifname, strerror(-err));
			goto out;
		}
		if (tc_hook) {
			LIBBPF_OPTS(bpf_tc_hook, ih, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
			LIBBPF_OPTS(bpf_tc_opts, ito, .handle = TC_HANDLE, .priority = TC_PRIO, .flags = BPF_TC_F_REPLACE);

			ito.prog_fd = PARTS[0].prog_fd(parts[0].skel, true);
			if ((err = bpf_tc_attach(&ih, &ito))) {
				fail("attach el_tc_ingress to %s ingress (direct-action): %s", ifname, strerror(-err));
				goto out;
			}
		}
	}
	fp_list(cfg.enabled, fps, sizeof(fps));
	fp_list(cfg.loaded, lfps, sizeof(lfps));
	if (o.enable & ~loaded) {
		char missing[64];

		fp_list(o.enable & ~loaded, missing, sizeof(missing));
		fprintf(stderr, "el-loader: WARNING: asked for %s, which this kernel's verifier rejected (above); attached "
			"without it\n", missing);
	}
	if (o.c.json) {
		printf("{\"ifname\":");
		json_string(stdout, ifname);
		printf(",\"ifindex\":%d,\"hook\":\"%s\",\"xdp_mode\":\"%s\",\"index\":%llu,\"n\":%u,\"f\":%u,\"enabled\":\"%s\",\"loaded\":\"%s\","
		       "\"objects\":[",
		       ifindex, tc_hook ? "tc" : "xdp", tc_hook ? "none" : mode_name, (unsigned long long)o.index, pt.n, pt.f, fps, lfps);
		for (size_t i = 0; i < N_PARTS; i++) {
			printf("%s{\"object\":\"%s\",\"loaded\":%s", i ? "," : "", PARTS[i].object, parts[i].ok ? "true" : "false");
			if (!parts[i].ok) {
				printf(",\"meaning\":");
				json_string(stdout, parts[i].meaning ? parts[i].meaning : "");
				printf(",\"verdict\":");
				json_string(stdout, parts[i].verdict);
			}
			printf("}");
		}
		printf("]}\n");
	} else {
		printf("el-loader: attached %s (%s %s)%s on %s (ifindex %d), replica %llu of %u, f=%u, "
		       "fast paths: %s (loaded: %s), pins in %s\n",
		       tc_hook ? "el_tc_ingress" : "el_xdp_dispatch", tc_hook ? "tc" : "xdp", tc_hook ? "ingress" : mode_name,
		       parts[0].ok ? (hook_created ? " and el_tc_egress (tc egress, new clsact)" : " and el_tc_egress (tc egress)") : "",
		       ifname, ifindex, (unsigned long long)o.index, pt.n, pt.f, fps, lfps, o.c.pin_dir);
	}
	rc = 0;
out:
	if (rc) {
		if (attached)
			detach_ifindex(ifindex, ifname);
		if (pinned)
			unpin_all(o.c.pin_dir);
	}
	/* attachments and pins keep what they need alive */
	for (size_t i = 0; i < N_PARTS; i++)
		if (parts[i].skel)
			PARTS[i].destroy(parts[i].skel);
	el_xdp__destroy(disp);
	return rc;
}

/* ---- set --------------------------------------------------------------------- */

struct set_opts {
	struct common c;
	__u32 mask, val;
};

static const char SET_USAGE[] = "el-loader set --pin-dir DIR [--broadcast on|off] [--quorum on|off] [--reply on|off]";

static const struct option SET_OPTIONS[] = {
	{ "pin-dir", required_argument, 0, O_PIN }, { "broadcast", required_argument, 0, O_BC },
	{ "quorum", required_argument, 0, O_Q },    { "reply", required_argument, 0, O_R },
	{ 0, 0, 0, 0 },
};

static int set_opt(int c, void *ctx)
{
	struct set_opts *o = ctx;
	__u32 bit = c == O_BC ? EL_FP_BROADCAST : c == O_Q ? EL_FP_QUORUM : c == O_R ? EL_FP_REPLY : 0;

	if (!bit)
		return common_opt(c, &o->c);
	o->mask |= bit;
	if (!strcmp(optarg, "on"))
		o->val |= bit;
	else if (strcmp(optarg, "off"))
		return fail("--%s %s: expected on or off", FP_NAMES[bit == EL_FP_BROADCAST ? 0 : bit == EL_FP_QUORUM ? 1 : 2],
			    optarg);
	return 0;
}

static int cmd_set(int argc, char **argv)
{
	struct set_opts o = { 0 };
	struct el_config cfg;
	__u32 k = 0;
	char fps[64], missing[64];
	int fd, rc = 1;

	if (parse_cmd(argc, argv, SET_OPTIONS, SET_USAGE, set_opt, &o) || need_pin_dir("set", &o.c))
		return 2;
	if (root_and_bpffs(o.c.pin_dir) || (fd = open_pinned(o.c.pin_dir, EL_STR(EL_MAP_CONFIG))) < 0)
		return 1;
	if (bpf_map_lookup_elem(fd, &k, &cfg)) {
		fail("read el_config: %s", strerror(errno));
		goto out;
	}
	if (o.val & o.mask & ~cfg.loaded) {
		fp_list(o.val & o.mask & ~cfg.loaded, missing, sizeof(missing));
		fail("cannot switch on %s: this kernel's verifier rejected it at attach (see the attach output)", missing);
		goto out;
	}
	cfg.enabled = (cfg.enabled & ~o.mask) | (o.val & o.mask);
	if (bpf_map_update_elem(fd, &k, &cfg, BPF_ANY)) {
		fail("write el_config: %s", strerror(errno));
		goto out;
	}
	fp_list(cfg.enabled, fps, sizeof(fps));
	printf("el-loader: fast paths now: %s\n", fps);
	rc = 0;
out:
	close(fd);
	return rc;
}

/* ---- detach ------------------------------------------------------------------ */

static const char DETACH_USAGE[] = "el-loader detach --pin-dir DIR (--ifname IF | --ifmac MAC)";

static const struct option IF_PIN_OPTIONS[] = {
	{ "pin-dir", required_argument, 0, O_PIN }, { "ifname", required_argument, 0, O_IFNAME },
	{ "ifmac", required_argument, 0, O_IFMAC }, { 0, 0, 0, 0 },
};

static int only_common(int c, void *ctx)
{
	return common_opt(c, ctx);
}

static int cmd_detach(int argc, char **argv)
{
	struct common o = { 0 };
	char ifname[IF_NAMESIZE] = "";
	__u8 mac[6];
	int ifindex;

	if (parse_cmd(argc, argv, IF_PIN_OPTIONS, DETACH_USAGE, only_common, &o) || need_pin_dir("detach", &o))
		return 2;
	if (root_and_bpffs(o.pin_dir))
		return 1;
	/* idempotent: a vanished interface has nothing attached any more */
	ifindex = find_ifindex("detach", &o, ifname, mac, false);
	if (ifindex < 0 || (ifindex && detach_ifindex(ifindex, ifname)) || unpin_all(o.pin_dir))
		return 1;
	printf("el-loader: detached%s%s, pins under %s removed\n", ifindex ? " from " : " (interface gone)", ifname,
	       o.pin_dir);
	return 0;
}

/* ---- stats, show ------------------------------------------------------------ */

static const char *const STAT_NAMES[EL_PROG_MAX] = { "dispatch", "broadcast", "quorum", "reply", "egress" };

static int read_stats(const char *dir, struct el_stat out[EL_PROG_MAX])
{
	int ncpu = libbpf_num_possible_cpus(), fd, rc = -1;
	struct el_stat *per;

	if (ncpu <= 0)
		return fail("cannot count possible CPUs: %s", strerror(-ncpu));
	if ((fd = open_pinned(dir, "el_stats")) < 0)
		return -1;
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per) {
		fail("out of memory");
		goto out;
	}
	memset(out, 0, sizeof(struct el_stat) * EL_PROG_MAX);
	for (__u32 k = 0; k < EL_PROG_MAX; k++) {
		if (bpf_map_lookup_elem(fd, &k, per)) {
			fail("read el_stats[%u]: %s", k, strerror(errno));
			goto out;
		}
		for (int c = 0; c < ncpu; c++) {
			const __u64 *src = (const __u64 *)&per[c];
			__u64 *dst = (__u64 *)&out[k];

			for (size_t w = 0; w < sizeof(struct el_stat) / sizeof(__u64); w++)
				dst[w] += src[w];
		}
	}
	rc = 0;
out:
	free(per);
	close(fd);
	return rc;
}

static void print_stats_json(const struct el_stat s[EL_PROG_MAX])
{
	printf("{");
	for (int k = 0; k < EL_PROG_MAX; k++)
		printf("%s\"%s\":{\"seen\":%llu,\"passed\":%llu,\"dropped\":%llu,\"cloned\":%llu,\"replied\":%llu,"
		       "\"fallback\":%llu,\"full\":%llu,\"errors\":%llu}",
		       k ? "," : "", STAT_NAMES[k], (unsigned long long)s[k].seen, (unsigned long long)s[k].passed,
		       (unsigned long long)s[k].dropped, (unsigned long long)s[k].cloned, (unsigned long long)s[k].replied,
		       (unsigned long long)s[k].fallback, (unsigned long long)s[k].full, (unsigned long long)s[k].errors);
	printf("}");
}

static const char STATS_USAGE[] = "el-loader stats --pin-dir DIR [--json]";
static const struct option PIN_JSON_OPTIONS[] = {
	{ "pin-dir", required_argument, 0, O_PIN }, { "json", no_argument, 0, O_JSON }, { 0, 0, 0, 0 },
};

static int cmd_stats(int argc, char **argv)
{
	struct common o = { 0 };
	struct el_stat s[EL_PROG_MAX];

	if (parse_cmd(argc, argv, PIN_JSON_OPTIONS, STATS_USAGE, only_common, &o) || need_pin_dir("stats", &o))
		return 2;
	if (root_and_bpffs(o.pin_dir) || read_stats(o.pin_dir, s))
		return 1;
	if (o.json) {
		print_stats_json(s);
		printf("\n");
		return 0;
	}
	printf("%-10s %11s %11s %11s %11s %11s %11s %11s %11s\n", "program", "seen", "passed", "dropped", "cloned",
	       "replied", "fallback", "full", "errors");
	for (int k = 0; k < EL_PROG_MAX; k++)
		printf("%-10s %11llu %11llu %11llu %11llu %11llu %11llu %11llu %11llu\n", STAT_NAMES[k],
		       (unsigned long long)s[k].seen, (unsigned long long)s[k].passed, (unsigned long long)s[k].dropped,
		       (unsigned long long)s[k].cloned, (unsigned long long)s[k].replied, (unsigned long long)s[k].fallback,
		       (unsigned long long)s[k].full, (unsigned long long)s[k].errors);
	return 0;
}

static __u32 pinned_prog_id(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.id = 0;
	close(fd);
	return info.id;
}

static int read_one(const char *dir, const char *name, void *val)
{
	__u32 k = 0;
	int fd = open_pinned(dir, name), rc;

	if (fd < 0)
		return -1;
	rc = bpf_map_lookup_elem(fd, &k, val) ? fail("read %s/%s: %s", dir, name, strerror(errno)) : 0;
	close(fd);
	return rc;
}

static const char SHOW_USAGE[] = "el-loader show --pin-dir DIR --json";

static int cmd_show(int argc, char **argv)
{
	struct common o = { 0 };
	struct if_nameindex *ifs, *it;
	struct el_stat s[EL_PROG_MAX];
	struct el_config cfg;
	struct el_ctrl ctl;
	struct el_fr_state fr;
	__u32 xdp_id, tc_id, tci_id;
	char fps[64], lfps[64];
	bool first;

	if (parse_cmd(argc, argv, PIN_JSON_OPTIONS, SHOW_USAGE, only_common, &o) || need_pin_dir("show", &o))
		return 2;
	if (!o.json)
		return fail("show: only --json output exists; use `stats` for a table"), 2;
	if (root_and_bpffs(o.pin_dir))
		return 1;
	xdp_id = pinned_prog_id(o.pin_dir, "el_xdp_dispatch");
	tc_id = pinned_prog_id(o.pin_dir, "el_tc_egress");
	tci_id = pinned_prog_id(o.pin_dir, "el_tc_ingress");
	printf("{\"pinDir\":");
	json_string(stdout, o.pin_dir);
	printf(",\"pinned\":%s,\"attached\":[", xdp_id ? "true" : "false");
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
		for (int pass = 0; pass < 2; pass++) {
			__u32 cur = pass ? tci_id : tc_id;

			hook.attach_point = pass ? BPF_TC_INGRESS : BPF_TC_EGRESS;
			tco.prog_id = 0;
			tco.prog_fd = 0;
			tco.flags = 0;
			if (!bpf_tc_query(&hook, &tco) && prog_name_by_id(tco.prog_id, name) && !strncmp(name, "el_", 3)) {
				printf("%s{\"hook\":\"tc\",\"mode\":\"%s\",\"ifname\":\"%s\",\"prog\":\"%s\",\"id\":%u,"
				       "\"current\":%s}",
				       first ? "" : ",", pass ? "ingress" : "egress", it->if_name, name, tco.prog_id,
				       tco.prog_id == cur ? "true" : "false");
				first = false;
			}
		}
	}
	if (ifs)
		if_freenameindex(ifs);
	printf("]");
	log_reset();
	if (xdp_id) {
		if (read_one(o.pin_dir, EL_STR(EL_MAP_CTRL), &ctl) || read_one(o.pin_dir, EL_STR(EL_MAP_CONFIG), &cfg) ||
		    read_one(o.pin_dir, EL_STR(EL_MAP_FR_STATE), &fr) || read_stats(o.pin_dir, s))
			return 1;
		fp_list(cfg.enabled, fps, sizeof(fps));
		fp_list(cfg.loaded, lfps, sizeof(lfps));
		printf(",\"ctrl\":{\"view\":%llu,\"status\":%u,\"lease_ns\":%llu,\"last_op\":%llu,\"commit\":%llu,\"my_idx\":%u,"
		       "\"n_replicas\":%u,\"f\":%u,\"gen\":%llu}",
		       (unsigned long long)EL_VS_VIEW(ctl.view_status), EL_VS_STATUS(ctl.view_status),
		       (unsigned long long)ctl.lease_ns, (unsigned long long)ctl.last_op, (unsigned long long)ctl.commit,
		       ctl.my_idx, ctl.n_replicas, ctl.f, (unsigned long long)ctl.gen);
		printf(",\"config\":{\"n_replicas\":%u,\"f\":%u,\"my_idx\":%u,\"enabled\":%u,\"fast_paths\":\"%s\","
		       "\"loaded\":%u,\"loaded_paths\":\"%s\",\"my_port\":%u}",
		       cfg.n_replicas, cfg.f, cfg.my_idx, cfg.enabled, fps, cfg.loaded, lfps, ntohs(cfg.my_port));
		printf(",\"fr_state\":{\"view\":%llu,\"last_op\":%llu}", (unsigned long long)fr.view,
		       (unsigned long long)fr.last_op);
		printf(",\"stats\":");
		print_stats_json(s);
	}
	printf("}\n");
	return 0;
}

/* ---- ctrl (tests, debugging) ------------------------------------------------ */

struct ctrl_opts {
	struct common c;
	bool has[7];
	__u64 v[7];
};
enum { CV_VIEW, CV_STATUS, CV_LEASE, CV_LAST, CV_COMMIT, CV_FRV, CV_FRL };

static const char CTRL_USAGE[] = "el-loader ctrl --pin-dir DIR [--view V] [--status S] [--lease-ms MS] [--last-op N] "
				 "[--commit C] [--fr-view V] [--fr-last-op N]";
static const struct option CTRL_OPTIONS[] = {
	{ "pin-dir", required_argument, 0, O_PIN },    { "view", required_argument, 0, O_VIEW },
	{ "status", required_argument, 0, O_STATUS },  { "lease-ms", required_argument, 0, O_LEASE },
	{ "last-op", required_argument, 0, O_LAST },   { "commit", required_argument, 0, O_COMMIT },
	{ "fr-view", required_argument, 0, O_FRV },    { "fr-last-op", required_argument, 0, O_FRL },
	{ 0, 0, 0, 0 },
};

static int ctrl_opt(int c, void *ctx)
{
	struct ctrl_opts *o = ctx;
	int which = c == O_VIEW ? CV_VIEW : c == O_STATUS ? CV_STATUS : c == O_LEASE ? CV_LEASE : c == O_LAST ? CV_LAST
		  : c == O_COMMIT ? CV_COMMIT : c == O_FRV ? CV_FRV : c == O_FRL ? CV_FRL : -1;

	if (which < 0)
		return common_opt(c, &o->c);
	o->has[which] = true;
	return parse_u64("ctrl option", optarg, &o->v[which]) ? -1 : 0;
}

static int cmd_ctrl(int argc, char **argv)
{
	struct ctrl_opts o;
	struct el_ctrl ctl;
	struct el_fr_state fr;
	struct timespec ts;
	__u32 k = 0;
	__u64 view, status;
	int fd, rc = 1;

	memset(&o, 0, sizeof(o));
	if (parse_cmd(argc, argv, CTRL_OPTIONS, CTRL_USAGE, ctrl_opt, &o) || need_pin_dir("ctrl", &o.c))
		return 2;
	if (o.has[CV_STATUS] && o.v[CV_STATUS] > EL_STATUS_RECOVERING)
		return fail("--status %llu: expected 0 (normal), 1 (view change) or 2 (recovering)",
			    (unsigned long long)o.v[CV_STATUS]), 2;
	if (o.has[CV_VIEW] && o.v[CV_VIEW] >= EL_VIEW_LIMIT)
		return fail("--view: views are below 2^62"), 2;
	if (root_and_bpffs(o.c.pin_dir) || (fd = open_pinned(o.c.pin_dir, EL_STR(EL_MAP_CTRL))) < 0)
		return 1;
	if (bpf_map_lookup_elem(fd, &k, &ctl)) {
		fail("read el_ctrl: %s", strerror(errno));
		goto out;
	}
	view = o.has[CV_VIEW] ? o.v[CV_VIEW] : EL_VS_VIEW(ctl.view_status);
	status = o.has[CV_STATUS] ? o.v[CV_STATUS] : EL_VS_STATUS(ctl.view_status);
	ctl.view_status = EL_VS(view, status);
	if (o.has[CV_LEASE]) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ctl.lease_ns = (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec + o.v[CV_LEASE] * 1000000ull;
	}
	if (o.has[CV_LAST])
		ctl.last_op = o.v[CV_LAST];
	if (o.has[CV_COMMIT])
		ctl.commit = o.v[CV_COMMIT];
	ctl.gen++;
	if (bpf_map_update_elem(fd, &k, &ctl, BPF_ANY)) {
		fail("write el_ctrl: %s", strerror(errno));
		goto out;
	}
	if (o.has[CV_FRV] || o.has[CV_FRL]) {
		close(fd);
		if ((fd = open_pinned(o.c.pin_dir, EL_STR(EL_MAP_FR_STATE))) < 0)
			return 1;
		if (bpf_map_lookup_elem(fd, &k, &fr)) {
			fail("read el_fr_state: %s", strerror(errno));
			goto out;
		}
		if (o.has[CV_FRV])
			fr.view = o.v[CV_FRV];
		if (o.has[CV_FRL])
			fr.last_op = o.v[CV_FRL];
		if (bpf_map_update_elem(fd, &k, &fr, BPF_ANY)) {
			fail("write el_fr_state: %s", strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* ---- drain (tests, debugging) ---------------------------------------------- */

static int on_record(void *ctx, void *data, size_t size)
{
	const struct el_fr_record *rec = data;
	const struct el_hdr *h = (const void *)(rec + 1);

	(void)ctx;
	if (size < sizeof(*rec) + sizeof(*h) || rec->len < sizeof(*h) || rec->len > size - sizeof(*rec)) {
		printf("{\"bad_record\":true,\"size\":%zu}\n", size);
		return 0;
	}
	printf("{\"len\":%u,\"magic_ok\":%s,\"type\":%u,\"replica\":%u,\"view\":%llu,\"opnum\":%llu,\"aux\":%u,"
	       "\"payload_len\":%u}\n",
	       rec->len, h->magic == EL_MAGIC ? "true" : "false", h->type, h->replica, (unsigned long long)h->view,
	       (unsigned long long)h->opnum, h->aux, h->payload_len);
	return 0;
}

static const char DRAIN_USAGE[] = "el-loader drain --pin-dir DIR";
static const struct option PIN_OPTIONS[] = { { "pin-dir", required_argument, 0, O_PIN }, { 0, 0, 0, 0 } };

static int cmd_drain(int argc, char **argv)
{
	struct common o = { 0 };
	struct ring_buffer *rb = NULL;
	int fd, n, rc = 1;

	if (parse_cmd(argc, argv, PIN_OPTIONS, DRAIN_USAGE, only_common, &o) || need_pin_dir("drain", &o))
		return 2;
	if (root_and_bpffs(o.pin_dir) || (fd = open_pinned(o.pin_dir, EL_STR(EL_MAP_FR_RING))) < 0)
		return 1;
	rb = ring_buffer__new(fd, on_record, NULL, NULL);
	if (!rb) {
		fail("open ring buffer el_fr_ring: %s", strerror(errno));
		goto out;
	}
	n = ring_buffer__consume(rb);
	if (n < 0) {
		fail("consume el_fr_ring: %s", strerror(-n));
		goto out;
	}
	rc = 0;
out:
	ring_buffer__free(rb);
	close(fd);
	return rc;
}

/* ---- peer-pass (netns labs) ------------------------------------------------ */

struct pass_opts {
	struct common c;
	bool off;
};
static const char PASS_USAGE[] = "el-loader peer-pass --ifname IF [--off]";
static const struct option PASS_OPTIONS[] = {
	{ "ifname", required_argument, 0, O_IFNAME }, { "off", no_argument, 0, O_OFF }, { 0, 0, 0, 0 },
};

static int pass_opt(int c, void *ctx)
{
	struct pass_opts *o = ctx;

	if (c == O_OFF) {
		o->off = true;
		return 0;
	}
	return common_opt(c, &o->c);
}

/* el_pass.bpf.o sits next to the loader (bpf/build/, or bpf/build/asan/..). */
static int pass_object_path(char *path, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", path, len - 32);

	if (n <= 0)
		return fail("cannot find my own path");
	path[n] = 0;
	snprintf(strrchr(path, '/') + 1, 32, "el_pass.bpf.o");
	if (access(path, R_OK)) {
		*strrchr(path, '/') = 0;
		snprintf(strrchr(path, '/') + 1, 32, "el_pass.bpf.o");
	}
	return 0;
}

static int cmd_peer_pass(int argc, char **argv)
{
	struct pass_opts o = { 0 };
	char ifname[IF_NAMESIZE], path[PATH_MAX];
	struct bpf_object *obj = NULL;
	__u8 mac[6];
	int ifindex, err, rc = 1;

	if (parse_cmd(argc, argv, PASS_OPTIONS, PASS_USAGE, pass_opt, &o))
		return 2;
	if (!o.c.ifname)
		return fail("peer-pass: --ifname IF is required (the node's switchIf from the plan)"), 2;
	if (check_root())
		return 1;
	ifindex = find_ifindex("peer-pass", &o.c, ifname, mac, !o.off);
	if (ifindex < 0)
		return 1;
	if (o.off)
		return ifindex && detach_ifindex(ifindex, ifname) ? 1 : 0;
	if (pass_object_path(path, sizeof(path)))
		return 1;
	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fail("open %s: %s; build it with `make -C bpf`", path, strerror(errno));
		goto out;
	}
	if ((err = bpf_object__load(obj))) {
		fail("load %s: %s", path, strerror(-err));
		goto out;
	}
	err = bpf_xdp_attach(ifindex, bpf_program__fd(bpf_object__find_program_by_name(obj, "el_xdp_pass")),
			     XDP_FLAGS_DRV_MODE, NULL);
	if (err) {
		const char *reason = kernel_reason();

		fail("attach el_xdp_pass to %s in native mode: %s%s%s", ifname, strerror(-err), reason ? ": kernel says: " : "",
		     reason ? reason : "");
		goto out;
	}
	rc = 0;
out:
	bpf_object__close(obj);
	return rc;
}

/* ---- impair (the bench's nemesis on netns labs) ------------------------------ */

#define IMPAIR_HANDLE 0xe2

struct impair_opts {
	struct common c;
	bool off;
	double loss, dup;
};
static const char IMPAIR_USAGE[] = "el-loader impair --pin-dir DIR --ifname IF [--loss PCT] [--dup PCT] | --off";
static const struct option IMPAIR_OPTIONS[] = {
	{ "pin-dir", required_argument, 0, O_PIN }, { "ifname", required_argument, 0, O_IFNAME },
	{ "loss", required_argument, 0, O_LOSS },   { "dup", required_argument, 0, O_DUP },
	{ "off", no_argument, 0, O_OFF },           { 0, 0, 0, 0 },
};

static int impair_opt(int c, void *ctx)
{
	struct impair_opts *o = ctx;
	char *end;

	if (c == O_OFF) {
		o->off = true;
		return 0;
	}
	if (c == O_LOSS || c == O_DUP) {
		double v = strtod(optarg, &end);

		if (end == optarg || (*end && strcmp(end, "%")) || v < 0 || v > 100)
			return fail("--%s %s: a percentage 0..100", c == O_LOSS ? "loss" : "dup", optarg);
		*(c == O_LOSS ? &o->loss : &o->dup) = v;
		return 0;
	}
	return common_opt(c, &o->c);
}

static __u32 rate_threshold(double pct)
{
	double t = pct / 100.0 * 4294967296.0;

	return t >= 4294967295.0 ? 0xffffffffu : (__u32)t;
}

static int cmd_impair(int argc, char **argv)
{
	struct impair_opts o;
	struct el_impair *skel = NULL;
	struct el_impair_rate cfg = { 0 };
	char ifname[IF_NAMESIZE], path[PATH_MAX];
	__u8 mac[6];
	__u32 key;
	int ifindex, map_fd = -1, prog_fd = -1, err, rc = 1;

	memset(&o, 0, sizeof(o));
	if (parse_cmd(argc, argv, IMPAIR_OPTIONS, IMPAIR_USAGE, impair_opt, &o) || need_pin_dir("impair", &o.c))
		return 2;
	if (!o.c.ifname)
		return fail("impair: --ifname IF is required (a switch-side port)"), 2;
	if (root_and_bpffs(o.c.pin_dir) || (ifindex = find_ifindex("impair", &o.c, ifname, mac, !o.off)) < 0)
		return 1;
	key = (__u32)ifindex;
	snprintf(path, sizeof(path), "%s/el_impair_cfg", o.c.pin_dir);
	if (o.off) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, tco, .handle = IMPAIR_HANDLE, .priority = TC_PRIO);

		if (ifindex) {
			bpf_tc_detach(&hook, &tco);
			hook.attach_point = BPF_TC_EGRESS | BPF_TC_INGRESS;
			bpf_tc_hook_destroy(&hook); /* only this lab's switch port: nobody else's qdisc */
		}
		map_fd = bpf_obj_get(path);
		if (map_fd >= 0 && ifindex)
			bpf_map_delete_elem(map_fd, &key);
		printf("el-loader: impairment off on %s\n", ifname[0] ? ifname : o.c.ifname);
		rc = 0;
		goto out;
	}
	/* one program and map per switch namespace, pinned; loaded on first use */
	map_fd = bpf_obj_get(path);
	snprintf(path, sizeof(path), "%s/el_tc_impair", o.c.pin_dir);
	prog_fd = bpf_obj_get(path);
	if (map_fd < 0 || prog_fd < 0) {
		if (map_fd >= 0)
			close(map_fd);
		if (prog_fd >= 0)
			close(prog_fd);
		if (mkdir_p(o.c.pin_dir))
			goto out;
		skel = el_impair__open_and_load();
		if (!skel) {
			fail("load el_impair: %s", explain_verifier(logbuf));
			goto out;
		}
		if (pin_object(skel->obj, o.c.pin_dir, true))
			goto out;
		map_fd = dup(bpf_map__fd(skel->maps.el_impair_cfg));
		prog_fd = dup(bpf_program__fd(skel->progs.el_tc_impair));
	}
	cfg.loss = rate_threshold(o.loss);
	cfg.dup = rate_threshold(o.dup);
	if (bpf_map_update_elem(map_fd, &key, &cfg, BPF_ANY)) {
		fail("set the impairment of %s: %s", ifname, strerror(errno));
		goto out;
	}
	{
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, tco, .handle = IMPAIR_HANDLE, .priority = TC_PRIO, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);

		err = bpf_tc_hook_create(&hook);
		if (err && err != -EEXIST) {
			fail("create clsact on %s: %s", ifname, strerror(-err));
			goto out;
		}
		if ((err = bpf_tc_attach(&hook, &tco))) {
			fail("attach el_tc_impair to %s egress: %s", ifname, strerror(-err));
			goto out;
		}
	}
	printf("el-loader: %s impaired: loss %.2f%%, duplicate %.2f%%\n", ifname, o.loss, o.dup);
	rc = 0;
out:
	if (map_fd >= 0)
		close(map_fd);
	if (prog_fd >= 0)
		close(prog_fd);
	el_impair__destroy(skel);
	return rc;
}

/* ---- main ------------------------------------------------------------------- */

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
} COMMANDS[] = {
	{ "attach", cmd_attach, ATTACH_USAGE }, { "set", cmd_set, SET_USAGE },     { "detach", cmd_detach, DETACH_USAGE },
	{ "stats", cmd_stats, STATS_USAGE },    { "show", cmd_show, SHOW_USAGE },  { "ctrl", cmd_ctrl, CTRL_USAGE },
	{ "drain", cmd_drain, DRAIN_USAGE },    { "peer-pass", cmd_peer_pass, PASS_USAGE },
	{ "impair", cmd_impair, IMPAIR_USAGE },
};

static void usage(FILE *out)
{
	fputs("usage:\n", out);
	for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
		fprintf(out, "  %s\n", COMMANDS[i].usage);
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	libbpf_set_print(capture);
	for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
		if (!strcmp(argv[1], COMMANDS[i].name))
			return COMMANDS[i].run(argc - 1, argv + 1);
	usage(stderr);
	fprintf(stderr, "el-loader: unknown command '%s'\n", argv[1]);
	return 2;
}
