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

/* One attach, from the options to the report: what its steps share. */
struct attach {
	struct attach_opts o;
	bool tc_hook;                          /* --hook tc: the ingress fast paths at TC ingress */
	struct peers pt;
	int ifindex;
	char ifname[IF_NAMESIZE];
	__u8 mac[6];                           /* the interface's, which fast replies use */
	struct el_xdp *disp;                   /* the XDP dispatcher: owns the maps */
	struct part_result parts[N_PARTS];
	struct el_config cfg;
	const char *attached_mode;             /* the XDP mode attached: native or generic */
	bool pinned, attached, hook_created;   /* what a failure has to undo */
};

/* The options, checked; 0, or 2 for a usage error. */
static int attach_args(int argc, char **argv, struct attach *a)
{
	struct attach_opts *o = &a->o;

	if (parse_cmd(argc, argv, ATTACH_OPTIONS, ATTACH_USAGE, attach_opt, o) || need_pin_dir("attach", &o->c))
		return 2;
	if (strcmp(o->xdp_mode, "native") && strcmp(o->xdp_mode, "generic") && strcmp(o->xdp_mode, "auto"))
		return fail("--xdp-mode %s: expected native, generic or auto", o->xdp_mode), 2;
	if (strcmp(o->hook, "xdp") && strcmp(o->hook, "tc"))
		return fail("--hook %s: expected xdp (the NIC's XDP hook) or tc (TC ingress, for veth)", o->hook), 2;
	a->tc_hook = !strcmp(o->hook, "tc");
	if (!o->peers)
		return fail("attach: --peers FILE is required (the lab's files/peers.table)"), 2;
	if (!o->has_index)
		return fail("attach: --index I is required (the node's replica index)"), 2;
	return 0;
}

/* The peer table, the interface, and a clean slate on it. */
static int attach_prepare(struct attach *a)
{
	const struct attach_opts *o = &a->o;
	const __u8 *mac = a->mac;

	if (root_and_bpffs(o->c.pin_dir) || read_peers(o->peers, &a->pt))
		return -1;
	if (o->index >= a->pt.n)
		return fail("--index %llu out of range: the cluster in %s has replicas 0..%u", (unsigned long long)o->index,
			    o->peers, a->pt.n - 1);
	a->ifindex = find_ifindex("attach", &o->c, a->ifname, a->mac, true);
	if (a->ifindex < 0)
		return -1;
	/* a crashed run may have left programs and pins: replace them */
	if (detach_ifindex(a->ifindex, a->ifname) || unpin_all(o->c.pin_dir) || mkdir_p(o->c.pin_dir))
		return -1;
	log_reset(); /* the queries above log "no qdisc" and the like: not news */
	if (memcmp(mac, a->pt.p[o->index].mac, 6))
		fprintf(stderr, "el-loader: warning: %s has MAC %02x:%02x:%02x:%02x:%02x:%02x, the plan says another; "
			"fast replies use the interface's\n", a->ifname, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return 0;
}

/* The dispatcher, which owns the maps: without it nothing attaches. */
static int load_dispatcher(struct attach *a)
{
	struct el_xdp *disp = el_xdp__open();
	int ncpu, err;

	a->disp = disp;
	if (!disp)
		return fail("open el_xdp: %s; rebuild with `make -C bpf`", strerror(errno));
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0 || bpf_map__set_max_entries(disp->maps.EL_MAP_PEERS, a->pt.n) ||
	    bpf_map__set_max_entries(disp->maps.EL_MAP_FR_BUSY, (__u32)ncpu))
		return fail("size the maps (%u peers, %d CPUs): %s", a->pt.n, ncpu, strerror(errno));
	/* the ring buffer came with 5.8: without it only the fast reply is lost */
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) <= 0)
		bpf_map__set_autocreate(disp->maps.EL_MAP_FR_RING, false);
	if ((err = el_xdp__load(disp))) {
		char verdict[1024];

		snprintf(verdict, sizeof(verdict), "%s", log_tail(6));
		fprintf(stderr, "%s%s", verdict, verdict[0] && verdict[strlen(verdict) - 1] != '\n' ? "\n" : "");
		log_reset();
		return fail("the XDP dispatcher el_xdp was rejected (%s): %s; no fast path can attach", strerror(-err),
			    explain_verifier(verdict));
	}
	return 0;
}

/* Each fast path on its own: a rejected one is reported and left out of
 * el_config.loaded, the others still attach. */
static void load_parts(struct attach *a)
{
	a->cfg.loaded = EL_FP_BROADCAST | EL_FP_QUORUM | EL_FP_REPLY;
	for (int i = 0; i < N_PARTS; i++) {
		load_part(&PARTS[i], a->disp->obj, &a->parts[i]);
		if (!a->parts[i].ok) {
			a->cfg.loaded &= ~PARTS[i].needed_by;
			fprintf(stderr, "el-loader: %s REJECTED by this kernel's verifier: %s\n%s\n", PARTS[i].object,
				a->parts[i].meaning, a->parts[i].verdict);
		}
	}
	log_reset();
}

/* el_config, el_peers and el_ctrl, before anything is attached. */
static int fill_maps(struct attach *a)
{
	struct el_config *cfg = &a->cfg;
	const struct el_peer *me = &a->pt.p[a->o.index];
	struct el_ctrl ctl;
	__u32 k = 0;
	int fd;

	cfg->n_replicas = a->pt.n;
	cfg->f = a->pt.f;
	cfg->my_idx = (__u32)a->o.index;
	cfg->enabled = a->o.enable & cfg->loaded;
	memcpy(cfg->my_mac, a->mac, 6);
	cfg->my_port = me->port;
	cfg->my_ip = me->ip;
	do {
		if (getrandom(&cfg->quorum_token, sizeof(cfg->quorum_token), 0) != sizeof(cfg->quorum_token))
			return fail("getrandom for the quorum token: %s", strerror(errno));
	} while (!cfg->quorum_token);
	if (bpf_map_update_elem(bpf_map__fd(a->disp->maps.EL_MAP_CONFIG), &k, cfg, BPF_ANY))
		return fail("fill " EL_STR(EL_MAP_CONFIG) ": %s", strerror(errno));
	fd = bpf_map__fd(a->disp->maps.EL_MAP_PEERS);
	for (__u32 i = 0; i < a->pt.n; i++) {
		a->pt.p[i].ifindex = (__u32)a->ifindex;
		if (bpf_map_update_elem(fd, &i, &a->pt.p[i], BPF_ANY))
			return fail("fill " EL_STR(EL_MAP_PEERS) "[%u]: %s", i, strerror(errno));
	}
	/* view 0, normal, no lease: the fast reply waits for a replica to renew it */
	memset(&ctl, 0, sizeof(ctl));
	ctl.view_status = EL_VS(0, EL_STATUS_NORMAL);
	ctl.my_idx = (__u32)a->o.index;
	ctl.n_replicas = a->pt.n;
	ctl.f = a->pt.f;
	if (bpf_map_update_elem(bpf_map__fd(a->disp->maps.EL_MAP_CTRL), &k, &ctl, BPF_ANY))
		return fail("fill " EL_STR(EL_MAP_CTRL) ": %s", strerror(errno));
	return 0;
}

/* The prog arrays get the fast paths that loaded; with --hook tc the ingress
 * fast paths are TC programs too, in el_tc_progs. */
static int fill_tail_slots(struct attach *a)
{
	for (int i = 0; i < N_PARTS; i++) {
		const struct part *p = &PARTS[i];
		int pfd, afd;

		if (!a->parts[i].ok || p->tail == TAIL_NONE)
			continue;
		pfd = p->prog_fd(a->parts[i].skel, a->tc_hook);
		afd = bpf_map__fd(p->tail == TAIL_XDP && !a->tc_hook ? a->disp->maps.EL_MAP_XDP_PROGS
								   : a->disp->maps.EL_MAP_TC_PROGS);
		if (bpf_map_update_elem(afd, &p->slot, &pfd, BPF_ANY))
			return fail("fill the tail-call slot of %s: %s", p->object, strerror(errno));
	}
	return 0;
}

/* Every map and program: the prog arrays keep their entries only while
 * referenced, and detach/stats/set/the replica run in other processes. */
static int pin_all(struct attach *a)
{
	a->pinned = true; /* a part pinned is undone too */
	if (pin_object(a->disp->obj, a->o.c.pin_dir, true))
		return -1;
	for (int i = 0; i < N_PARTS; i++)
		if (a->parts[i].ok && pin_object(PARTS[i].obj(a->parts[i].skel), a->o.c.pin_dir, false))
			return -1;
	return 0;
}

/* The XDP dispatcher: native, generic, or (auto) native else generic with a
 * loud warning that names the kernel's reason and the fix. */
static int attach_xdp(struct attach *a)
{
	int prog = bpf_program__fd(a->disp->progs.el_xdp_dispatch), err;
	bool native = strcmp(a->o.xdp_mode, "generic") != 0;
	char hint[512];

	log_reset();
	a->attached_mode = "native";
	err = native ? bpf_xdp_attach(a->ifindex, prog, XDP_FLAGS_DRV_MODE, NULL) : -EAGAIN;
	if (err && native) {
		const char *reason = kernel_reason();

		xdp_hint(a->ifname, reason, hint, sizeof(hint));
		if (!strcmp(a->o.xdp_mode, "native"))
			return fail("attach el_xdp_dispatch to %s in native mode: %s%s%s; %s", a->ifname, strerror(-err),
				    reason ? ": kernel says: " : "", reason ? reason : "", hint);
		fprintf(stderr,
			"el-loader: WARNING: native XDP refused on %s (%s%s%s); falling back to GENERIC mode, which is "
			"much slower. Fix: %s\n",
			a->ifname, strerror(-err), reason ? ": kernel says: " : "", reason ? reason : "", hint);
	}
	if (err) {
		a->attached_mode = "generic";
		err = bpf_xdp_attach(a->ifindex, prog, XDP_FLAGS_SKB_MODE, NULL);
		if (err)
			return fail("attach el_xdp_dispatch to %s in generic mode: %s", a->ifname, strerror(-err));
	}
	return 0;
}

/* el_tc's egress dispatcher and, with --hook tc, its ingress twin. */
static int attach_tc(struct attach *a)
{
	const struct part_result *tc = &a->parts[PART_TC];
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tco, .handle = TC_HANDLE, .priority = TC_PRIO, .flags = BPF_TC_F_REPLACE);
	int err;

	tco.prog_fd = PARTS[PART_TC].prog_fd(tc->skel, false);
	/* the clsact qdisc may already exist (a previous run, another tool) */
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return fail("create clsact qdisc on %s: %s; does this kernel have sch_clsact (`modprobe sch_ingress`)?",
			    a->ifname, strerror(-err));
	a->hook_created = !err;
	if ((err = bpf_tc_attach(&hook, &tco)))
		return fail("attach el_tc_egress to %s egress (direct-action): %s", a->ifname, strerror(-err));
	if (a->tc_hook) {
		LIBBPF_OPTS(bpf_tc_hook, ih, .ifindex = a->ifindex, .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, ito, .handle = TC_HANDLE, .priority = TC_PRIO, .flags = BPF_TC_F_REPLACE);

		ito.prog_fd = PARTS[PART_TC].prog_fd(tc->skel, true);
		if ((err = bpf_tc_attach(&ih, &ito)))
			return fail("attach el_tc_ingress to %s ingress (direct-action): %s", a->ifname, strerror(-err));
	}
	return 0;
}

/* The ingress dispatcher (XDP, or with --hook tc el_tc_ingress), then TC egress. */
static int attach_hooks(struct attach *a)
{
	bool have_tc = a->parts[PART_TC].ok;

	if (a->tc_hook && !have_tc)
		return fail("--hook tc needs el_tc, which this kernel's verifier rejected (above)");
	if (!a->tc_hook && attach_xdp(a))
		return -1;
	a->attached = true;
	return have_tc ? attach_tc(a) : 0;
}

static void report_json(const struct attach *a, const char *fps, const char *lfps)
{
	printf("{\"ifname\":");
	json_string(stdout, a->ifname);
	printf(",\"ifindex\":%d,\"hook\":\"%s\",\"xdp_mode\":\"%s\",\"index\":%llu,\"n\":%u,\"f\":%u,\"enabled\":\"%s\","
	       "\"loaded\":\"%s\",\"objects\":[",
	       a->ifindex, a->tc_hook ? "tc" : "xdp", a->tc_hook ? "none" : a->attached_mode, (unsigned long long)a->o.index,
	       a->pt.n, a->pt.f, fps, lfps);
	for (int i = 0; i < N_PARTS; i++) {
		const struct part_result *r = &a->parts[i];

		printf("%s{\"object\":\"%s\",\"loaded\":%s", i ? "," : "", PARTS[i].object, r->ok ? "true" : "false");
		if (!r->ok) {
			printf(",\"meaning\":");
			json_string(stdout, r->meaning ? r->meaning : "");
			printf(",\"verdict\":");
			json_string(stdout, r->verdict);
		}
		printf("}");
	}
	printf("]}\n");
}

/* A warning for what was asked for and not loaded, then one line (or one
 * JSON object, --json) that src/lab/bpf.ts parses. */
static void report(const struct attach *a)
{
	const char *egress = !a->parts[PART_TC].ok ? ""
			     : a->hook_created   ? " and el_tc_egress (tc egress, new clsact)"
						 : " and el_tc_egress (tc egress)";
	__u32 missing = a->o.enable & ~a->cfg.loaded;
	char fps[64], lfps[64];

	fp_list(a->cfg.enabled, fps, sizeof(fps));
	fp_list(a->cfg.loaded, lfps, sizeof(lfps));
	if (missing) {
		char names[64];

		fp_list(missing, names, sizeof(names));
		fprintf(stderr, "el-loader: WARNING: asked for %s, which this kernel's verifier rejected (above); attached "
			"without it\n", names);
	}
	if (a->o.c.json) {
		report_json(a, fps, lfps);
		return;
	}
	printf("el-loader: attached %s (%s %s)%s on %s (ifindex %d), replica %llu of %u, f=%u, "
	       "fast paths: %s (loaded: %s), pins in %s\n",
	       a->tc_hook ? "el_tc_ingress" : "el_xdp_dispatch", a->tc_hook ? "tc" : "xdp",
	       a->tc_hook ? "ingress" : a->attached_mode, egress, a->ifname, a->ifindex, (unsigned long long)a->o.index, a->pt.n,
	       a->pt.f, fps, lfps, a->o.c.pin_dir);
}

/* On a failure, removes what was attached and pinned; the skeletons go in
 * any case (attachments and pins keep what they need alive). */
static void attach_release(struct attach *a, bool failed)
{
	if (failed) {
		if (a->attached)
			detach_ifindex(a->ifindex, a->ifname);
		if (a->pinned)
			unpin_all(a->o.c.pin_dir);
	}
	for (int i = 0; i < N_PARTS; i++)
		if (a->parts[i].skel)
			PARTS[i].destroy(a->parts[i].skel);
	el_xdp__destroy(a->disp);
}

static int cmd_attach(int argc, char **argv)
{
	struct attach a = { .o = { .xdp_mode = "auto", .hook = "xdp" } };
	int rc = attach_args(argc, argv, &a);

	if (rc)
		return rc;
	if (attach_prepare(&a) || load_dispatcher(&a))
		rc = 1;
	else {
		load_parts(&a);
		rc = fill_maps(&a) || fill_tail_slots(&a) || pin_all(&a) || attach_hooks(&a) ? 1 : 0;
	}
	if (!rc)
		report(&a);
	attach_release(&a, rc != 0);
	return rc;
}

const struct command ATTACH_CMD = { "attach", cmd_attach, ATTACH_USAGE };
