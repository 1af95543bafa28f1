// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * el_xdp.bpf.c - the XDP dispatcher, attached on every replica's lab NIC.
 * Parses Ethernet/IPv4/UDP/el_hdr once, recognises our frames by magic,
 * version AND the UDP port from el_config (runtime data), and tail-calls the
 * fast path for the message type through el_xdp_progs when it is switched
 * on. Everything else goes up unchanged. Written from the paper's
 * description (Electrode, NSDI '23); nothing from the original code.
 *
 * Each fast path is its own object (el_quorum, el_reply, el_broadcast), so
 * a program one kernel's verifier rejects does not take the others down.
 */
#include "el_common.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("xdp")
int el_xdp_dispatch(struct xdp_md *ctx)
{
	struct el_config *cfg = config();

	count(EL_PROG_DISPATCH, C_SEEN);
	if (!cfg) {
		count(EL_PROG_DISPATCH, C_ERRORS);
		return XDP_PASS;
	}
	return ingress_dispatch(ctx, &el_xdp_progs, (void *)(long)ctx->data, (void *)(long)ctx->data_end, cfg)
		       ? XDP_DROP
		       : XDP_PASS;
}
