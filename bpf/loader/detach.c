// SPDX-License-Identifier: MIT
/*
 * detach.c - el-loader detach: removes our programs from the interface and our pins.
 */
#include "loader.h"

static const char DETACH_USAGE[] = "el-loader detach --pin-dir DIR (--ifname IF | --ifmac MAC)";

static const struct option IF_PIN_OPTIONS[] = {
	{ "pin-dir", required_argument, 0, O_PIN }, { "ifname", required_argument, 0, O_IFNAME },
	{ "ifmac", required_argument, 0, O_IFMAC }, { 0, 0, 0, 0 },
};

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

const struct command DETACH_CMD = { "detach", cmd_detach, DETACH_USAGE };
