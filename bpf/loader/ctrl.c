// SPDX-License-Identifier: MIT
/*
 * ctrl.c - el-loader ctrl: writes el_ctrl/el_fr_state the way the replica does
 * (tests, debugging).
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"

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

static void edit_ctrl(const struct ctrl_opts *o, void *val)
{
	struct el_ctrl *ctl = val;
	__u64 view = o->has[CV_VIEW] ? o->v[CV_VIEW] : EL_VS_VIEW(ctl->view_status);
	__u64 status = o->has[CV_STATUS] ? o->v[CV_STATUS] : EL_VS_STATUS(ctl->view_status);
	struct timespec ts;

	ctl->view_status = EL_VS(view, status);
	if (o->has[CV_LEASE]) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ctl->lease_ns = (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec + o->v[CV_LEASE] * 1000000ull;
	}
	if (o->has[CV_LAST])
		ctl->last_op = o->v[CV_LAST];
	if (o->has[CV_COMMIT])
		ctl->commit = o->v[CV_COMMIT];
	ctl->gen++;
}

static void edit_fr_state(const struct ctrl_opts *o, void *val)
{
	struct el_fr_state *fr = val;

	if (o->has[CV_FRV])
		fr->view = o->v[CV_FRV];
	if (o->has[CV_FRL])
		fr->last_op = o->v[CV_FRL];
}

/* Entry 0 of the pinned map `name`, read, edited and written back with map
 * updates (the replica writes through an mmap; the programs see the same). */
static int rewrite(const struct ctrl_opts *o, const char *name, void *val,
		   void (*edit)(const struct ctrl_opts *o, void *val))
{
	__u32 k = 0;
	int fd = open_pinned(o->c.pin_dir, name), rc = -1;

	if (fd < 0)
		return -1;
	if (bpf_map_lookup_elem(fd, &k, val)) {
		fail("read %s: %s", name, strerror(errno));
	} else {
		edit(o, val);
		if (bpf_map_update_elem(fd, &k, val, BPF_ANY))
			fail("write %s: %s", name, strerror(errno));
		else
			rc = 0;
	}
	close(fd);
	return rc;
}

static int cmd_ctrl(int argc, char **argv)
{
	struct ctrl_opts o;
	struct el_ctrl ctl;
	struct el_fr_state fr;

	memset(&o, 0, sizeof(o));
	if (parse_cmd(argc, argv, CTRL_OPTIONS, CTRL_USAGE, ctrl_opt, &o) || need_pin_dir("ctrl", &o.c))
		return 2;
	if (o.has[CV_STATUS] && o.v[CV_STATUS] > EL_STATUS_RECOVERING)
		return fail("--status %llu: expected 0 (normal), 1 (view change) or 2 (recovering)",
			    (unsigned long long)o.v[CV_STATUS]), 2;
	if (o.has[CV_VIEW] && o.v[CV_VIEW] >= EL_VIEW_LIMIT)
		return fail("--view: views are below 2^62"), 2;
	if (root_and_bpffs(o.c.pin_dir) || rewrite(&o, EL_STR(EL_MAP_CTRL), &ctl, edit_ctrl))
		return 1;
	if ((o.has[CV_FRV] || o.has[CV_FRL]) && rewrite(&o, EL_STR(EL_MAP_FR_STATE), &fr, edit_fr_state))
		return 1;
	return 0;
}

const struct command CTRL_CMD = { "ctrl", cmd_ctrl, CTRL_USAGE };
