// SPDX-License-Identifier: MIT
/*
 * iface.c - the lab interface (by name or MAC), our programs on an interface, and
 * what to do when native XDP is refused.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <netpacket/packet.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loader.h"

/* Resolves --ifname or --ifmac; fills name (IF_NAMESIZE) and mac. Returns the
 * ifindex, 0 if absent and !must, -1 on an error (reported). */
int find_ifindex(const char *cmd, const struct common *o, char name[IF_NAMESIZE], __u8 mac[6], bool must)
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

bool prog_name_by_id(__u32 id, char name[BPF_OBJ_NAME_LEN])
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
int detach_ifindex(int ifindex, const char *ifname)
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

void xdp_hint(const char *ifname, const char *reason, char *out, size_t len)
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
