// SPDX-License-Identifier: MIT
/*
 * el-loader (main.c) - loads, attaches, pins, switches and detaches the Electrode fast
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

#include <string.h>

#include "loader.h"

/* ---- main ------------------------------------------------------------------- */

static const struct command *const COMMANDS[] = {
	&ATTACH_CMD, &SET_CMD, &DETACH_CMD, &STATS_CMD, &SHOW_CMD, &CTRL_CMD, &DRAIN_CMD, &PEER_PASS_CMD, &IMPAIR_CMD,
};

static void usage(FILE *out)
{
	fputs("usage:\n", out);
	for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
		fprintf(out, "  %s\n", COMMANDS[i]->usage);
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	libbpf_set_print(capture);
	for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
		if (!strcmp(argv[1], COMMANDS[i]->name))
			return COMMANDS[i]->run(argc - 1, argv + 1);
	usage(stderr);
	fprintf(stderr, "el-loader: unknown command '%s'\n", argv[1]);
	return 2;
}
