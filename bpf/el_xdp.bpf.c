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
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct el_config *cfg = config();
	struct el_frame *f = data;
	enum parse_result r;
	__u32 enabled;

	count(EL_PROG_DISPATCH, C_SEEN);
	if (!cfg) {
		count(EL_PROG_DISPATCH, C_ERRORS);
		return XDP_PASS;
	}
	r = parse(data, data_end, cfg->my_port, 0);
	if (r == P_MALFORMED)
		count(EL_PROG_DISPATCH, C_ERRORS);
	else if (r == P_FRAGMENT)
		count(EL_PROG_DISPATCH, C_FALLBACK);
	if (r != P_OK)
		goto pass;
	if (data + sizeof(*f) > data_end) /* for the verifier; parse() checked */
		goto pass;
	if (f->ip.daddr != cfg->my_ip)
		goto pass;
	enabled = cfg->enabled;
	if (f->el.type == EL_MSG_PREPARE_OK) {
		/* the quorum mark is the kernel's word that a quorum formed:
		 * one arriving from the wire is forged, whatever is switched on */
		if (f->el.flags & EL_F_QUORUM) {
			count(EL_PROG_DISPATCH, C_ERRORS);
			count(EL_PROG_DISPATCH, C_DROPPED);
			return XDP_DROP;
		}
		if (enabled & EL_FP_QUORUM) {
			bpf_tail_call(ctx, &el_xdp_progs, EL_PROG_QUORUM);
			count(EL_PROG_DISPATCH, C_ERRORS); /* not loaded: goes up unmarked */
		}
	} else if (f->el.type == EL_MSG_PREPARE && (enabled & EL_FP_REPLY)) {
		bpf_tail_call(ctx, &el_xdp_progs, EL_PROG_REPLY);
		count(EL_PROG_DISPATCH, C_ERRORS);
	}
pass:
	count(EL_PROG_DISPATCH, C_PASSED);
	return XDP_PASS;
}
