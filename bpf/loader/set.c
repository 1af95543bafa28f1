// SPDX-License-Identifier: MIT
/*
 * set.c - el-loader set: switches fast paths on and off in el_config.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"

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
		fail("read " EL_STR(EL_MAP_CONFIG) ": %s", strerror(errno));
		goto out;
	}
	if (o.val & o.mask & ~cfg.loaded) {
		fp_list(o.val & o.mask & ~cfg.loaded, missing, sizeof(missing));
		fail("cannot switch on %s: this kernel's verifier rejected it at attach (see the attach output)", missing);
		goto out;
	}
	cfg.enabled = (cfg.enabled & ~o.mask) | (o.val & o.mask);
	if (bpf_map_update_elem(fd, &k, &cfg, BPF_ANY)) {
		fail("write " EL_STR(EL_MAP_CONFIG) ": %s", strerror(errno));
		goto out;
	}
	fp_list(cfg.enabled, fps, sizeof(fps));
	printf("el-loader: fast paths now: %s\n", fps);
	rc = 0;
out:
	close(fd);
	return rc;
}

const struct command SET_CMD = { "set", cmd_set, SET_USAGE };
