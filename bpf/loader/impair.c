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

/* Our filter off the port (and the clsact qdisc: only this lab's switch port
 * has one) and the port's entry out of the map; ifindex 0: the port is gone. */
static int impair_off(const struct impair_opts *o, int ifindex, const char *ifname, const char *map_path)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tco, .handle = IMPAIR_HANDLE, .priority = TC_PRIO);
	__u32 key = (__u32)ifindex;
	int map_fd;

	if (ifindex) {
		bpf_tc_detach(&hook, &tco);
		hook.attach_point = BPF_TC_EGRESS | BPF_TC_INGRESS;
		bpf_tc_hook_destroy(&hook); /* only this lab's switch port: nobody else's qdisc */
	}
	map_fd = bpf_obj_get(map_path);
	if (map_fd >= 0 && ifindex)
		bpf_map_delete_elem(map_fd, &key);
	if (map_fd >= 0)
		close(map_fd);
	printf("el-loader: impairment off on %s\n", ifname[0] ? ifname : o->c.ifname);
	return 0;
}

/* One program and map per switch namespace, pinned: opened from the pins,
 * or loaded and pinned on first use. */
static int impair_objects(const char *dir, const char *map_path, int *map_fd, int *prog_fd)
{
	char path[PATH_MAX];
	struct el_impair *skel;
	int rc = -1;

	*map_fd = bpf_obj_get(map_path);
	snprintf(path, sizeof(path), "%s/el_tc_impair", dir);
	*prog_fd = bpf_obj_get(path);
	if (*map_fd >= 0 && *prog_fd >= 0)
		return 0;
	if (*map_fd >= 0)
		close(*map_fd);
	if (*prog_fd >= 0)
		close(*prog_fd);
	*map_fd = *prog_fd = -1;
	if (mkdir_p(dir))
		return -1;
	skel = el_impair__open_and_load();
	if (!skel)
		return fail("load el_impair: %s", explain_verifier(log_text()));
	if (!pin_object(skel->obj, dir, true)) {
		*map_fd = dup(bpf_map__fd(skel->maps.EL_MAP_IMPAIR));
		*prog_fd = dup(bpf_program__fd(skel->progs.el_tc_impair));
		rc = 0;
	}
	el_impair__destroy(skel);
	return rc;
}

/* The rates into the map, then the filter on the port's egress. */
static int impair_on(const struct impair_opts *o, int ifindex, const char *ifname, int map_fd, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tco, .handle = IMPAIR_HANDLE, .priority = TC_PRIO, .prog_fd = prog_fd,
		    .flags = BPF_TC_F_REPLACE);
	struct el_impair_rate cfg = { .loss = rate_threshold(o->loss), .dup = rate_threshold(o->dup) };
	__u32 key = (__u32)ifindex;
	int err;

	if (bpf_map_update_elem(map_fd, &key, &cfg, BPF_ANY))
		return fail("set the impairment of %s: %s", ifname, strerror(errno));
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return fail("create clsact on %s: %s", ifname, strerror(-err));
	if ((err = bpf_tc_attach(&hook, &tco)))
		return fail("attach el_tc_impair to %s egress: %s", ifname, strerror(-err));
	printf("el-loader: %s impaired: loss %.2f%%, duplicate %.2f%%\n", ifname, o->loss, o->dup);
	return 0;
}

static int cmd_impair(int argc, char **argv)
{
	struct impair_opts o;
	char ifname[IF_NAMESIZE] = "", map_path[PATH_MAX];
	__u8 mac[6];
	int ifindex, map_fd, prog_fd, rc;

	memset(&o, 0, sizeof(o));
	if (parse_cmd(argc, argv, IMPAIR_OPTIONS, IMPAIR_USAGE, impair_opt, &o) || need_pin_dir("impair", &o.c))
		return 2;
	if (!o.c.ifname)
		return fail("impair: --ifname IF is required (a switch-side port)"), 2;
	if (root_and_bpffs(o.c.pin_dir) || (ifindex = find_ifindex("impair", &o.c, ifname, mac, !o.off)) < 0)
		return 1;
	snprintf(map_path, sizeof(map_path), "%s/" EL_STR(EL_MAP_IMPAIR), o.c.pin_dir);
	if (o.off)
		return impair_off(&o, ifindex, ifname, map_path);
	if (impair_objects(o.c.pin_dir, map_path, &map_fd, &prog_fd))
		return 1;
	rc = impair_on(&o, ifindex, ifname, map_fd, prog_fd) ? 1 : 0;
	close(map_fd);
	close(prog_fd);
	return rc;
}

const struct command IMPAIR_CMD = { "impair", cmd_impair, IMPAIR_USAGE };
