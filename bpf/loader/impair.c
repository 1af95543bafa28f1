// SPDX-License-Identifier: MIT
/*
 * impair.c - el-loader impair: the bench's nemesis on netns labs (loss and
 * duplication on a switch port, el_impair.bpf.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"
#include "el_impair.skel.h"

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
	snprintf(path, sizeof(path), "%s/" EL_STR(EL_MAP_IMPAIR), o.c.pin_dir);
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
			fail("load el_impair: %s", explain_verifier(log_text()));
			goto out;
		}
		if (pin_object(skel->obj, o.c.pin_dir, true))
			goto out;
		map_fd = dup(bpf_map__fd(skel->maps.EL_MAP_IMPAIR));
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

const struct command IMPAIR_CMD = { "impair", cmd_impair, IMPAIR_USAGE };
