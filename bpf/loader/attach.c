// SPDX-License-Identifier: MIT
/*
 * attach.c - el-loader attach: loads the objects, fills the maps and the tail-call
 * slots, pins everything and attaches the dispatchers to the lab NIC.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <linux/if_link.h>

#include "loader.h"
#include "el_xdp.skel.h"

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

const struct command ATTACH_CMD = { "attach", cmd_attach, ATTACH_USAGE };
