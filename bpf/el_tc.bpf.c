// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * el_tc.bpf.c - the TC egress dispatcher (clsact, direct action), attached
 * on every replica's lab NIC. For our frames leaving this node it arms the
 * quorum slot when a Prepare leaves the leader (so el_xdp_quorum can count
 * its PrepareOKs), and hands a Prepare/Commit that user space marked
 * EL_F_BCAST to the fan-out (el_tc_broadcast, through el_tc_progs).
 */
#include "el_common.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* A frame shorter than the fixed headers + el_hdr: copied out (no packet
 * pointers, so it does not fork the main program's verification) and
 * counted as an error if it is UDP from our port. */
static __always_inline int short_frame(struct __sk_buff *skb, const struct el_config *cfg)
{
	struct el_frame f;

	if (bpf_skb_load_bytes(skb, 0, &f, EL_HDR_OFFSET))
		return TC_ACT_OK;
	if (f.eth.h_proto == bpf_htons(ETH_P_IP) && f.ip.protocol == IPPROTO_UDP && f.udp.source == cfg->my_port) {
		count(EL_PROG_EGRESS, C_SEEN);
		count(EL_PROG_EGRESS, C_ERRORS);
	}
	return TC_ACT_OK;
}

static __always_inline void arm_slot(__u64 view, __u64 opnum)
{
	__u32 key = opnum & (EL_QSLOTS - 1);
	struct el_qslot *slot = bpf_map_lookup_elem(&el_qslots, &key);

	if (!slot)
		return;
	bpf_spin_lock(&slot->lock);
	el_q_arm(&slot->c, view, opnum);
	bpf_spin_unlock(&slot->lock);
}

SEC("tc")
int el_tc_egress(struct __sk_buff *skb)
{
	struct el_config *cfg = config();
	struct el_ctrl *c = ctrl();
	void *data, *data_end;
	struct el_frame *f;
	__u32 leader;
	__u8 type;
	__u64 vs;

	if (!cfg || !c)
		return TC_ACT_OK;
	if ((void *)(long)skb->data + sizeof(*f) > (void *)(long)skb->data_end) {
		if (skb->len < sizeof(*f))
			return short_frame(skb, cfg);
		/* locally generated UDP is linear in practice; make sure */
		if (bpf_skb_pull_data(skb, sizeof(*f)))
			return TC_ACT_OK;
	}
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	f = data;
	switch (parse(data, data_end, cfg->my_port, 1)) {
	case P_NOT_OURS:
		return TC_ACT_OK;
	case P_MALFORMED:
		count(EL_PROG_EGRESS, C_SEEN);
		count(EL_PROG_EGRESS, C_ERRORS);
		return TC_ACT_OK;
	case P_FRAGMENT:
		/* the replica marks only datagrams within the MTU; a large one
		 * goes out unmarked, to each follower, and is fragmented */
		count(EL_PROG_EGRESS, C_SEEN);
		count(EL_PROG_EGRESS, C_FALLBACK);
		return TC_ACT_OK;
	case P_OK:
		break;
	}
	/* only what this replica's own socket sends as this replica: another
	 * local sender's datagram is not armed for nor fanned out */
	if (data + sizeof(*f) > data_end || f->ip.saddr != cfg->my_ip || f->el.replica != cfg->my_idx)
		return TC_ACT_OK;
	count(EL_PROG_EGRESS, C_SEEN);
	type = f->el.type;
	vs = EL_READ_ONCE(c->view_status);
	leader = normal_leader(vs, cfg->n_replicas);
	if (type == EL_MSG_PREPARE && leader == cfg->my_idx && (cfg->enabled & EL_FP_QUORUM))
		arm_slot(f->el.view, f->el.opnum);
	if ((f->el.flags & EL_F_BCAST) && (type == EL_MSG_PREPARE || type == EL_MSG_COMMIT)) {
		if ((cfg->enabled & EL_FP_BROADCAST) && leader == cfg->my_idx) {
			bpf_tail_call(skb, &el_tc_progs, EL_PROG_BROADCAST);
			count(EL_PROG_EGRESS, C_ERRORS); /* tail call missing */
		} else {
			/* the replica looks at `enabled` before it marks: this is a
			 * race with `el-loader set` or a view change; the follower it
			 * went to still gets it, the others by retransmission */
			count(EL_PROG_EGRESS, C_FALLBACK);
		}
	}
	count(EL_PROG_EGRESS, C_PASSED);
	return TC_ACT_OK;
}

/*
 * el_tc_ingress - the ingress dispatcher for veth (netns labs): what
 * el_xdp_dispatch does at the XDP hook, on the skb at TC ingress (clsact,
 * direct action). Native XDP on a veth turns every frame into an XDP buffer
 * in the veth's NAPI loop, often with a copy (skb_pp_cow_data), and needs an
 * XDP program on the peer for XDP_TX: on veth, TC ingress sees the same
 * frame for less. Tail-calls el_tci_quorum / el_tci_reply through
 * el_tc_progs; counted under the same counters as the XDP programs.
 */
SEC("tc")
int el_tc_ingress(struct __sk_buff *skb)
{
	struct el_config *cfg = config();

	count(EL_PROG_DISPATCH, C_SEEN);
	if (!cfg) {
		count(EL_PROG_DISPATCH, C_ERRORS);
		return TC_ACT_OK;
	}
	if ((void *)(long)skb->data + sizeof(struct el_frame) > (void *)(long)skb->data_end && skb->len >= sizeof(struct el_frame) &&
	    bpf_skb_pull_data(skb, sizeof(struct el_frame))) {
		count(EL_PROG_DISPATCH, C_PASSED);
		return TC_ACT_OK;
	}
	return ingress_dispatch(skb, &el_tc_progs, (void *)(long)skb->data, (void *)(long)skb->data_end, cfg)
		       ? TC_ACT_SHOT
		       : TC_ACT_OK;
}
