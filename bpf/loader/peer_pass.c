// SPDX-License-Identifier: MIT
/*
 * peer_pass.c - el-loader peer-pass: native XDP_PASS on the switch end of a node's veth
 * (netns labs), so that the node's native XDP_TX frames are accepted.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>

#include "loader.h"

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

const struct command PEER_PASS_CMD = { "peer-pass", cmd_peer_pass, PASS_USAGE };
