// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * el_quorum.bpf.c - quorum prune on the leader, tail-called by the ingress
 * dispatcher for PrepareOKs: el_xdp_quorum at the XDP hook (real and virtio
 * NICs), el_tci_quorum at TC ingress (veth: netns labs, where native XDP
 * costs a conversion and often a copy per frame). One decision for both.
 * Counts PrepareOKs per (view, opnum) in el_qslots (armed by el_tc_egress
 * when the Prepare leaves). The f-th distinct ack goes up MARKED with
 * EL_F_QUORUM and the loader's quorum token: that mark, and nothing else,
 * tells the replica a quorum formed. Acks before or after it are dropped.
 * An ack for an op no slot is armed for (slot reused, Prepare fragmented or
 * never seen leaving, another view) goes up UNMARKED: user space counts it
 * as that one follower's ack, so a fast path that is off, missing or
 * confused can only cost speed, never commit an op early. An ack whose
 * source address is not the configured one of the follower it names is
 * never counted (errors; user space drops it as spoofed).
 */
#include "el_common.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

enum q_verdict { Q_PASS, Q_DROP };

static __always_inline enum q_verdict quorum(void *data, void *data_end)
{
	struct el_config *cfg = config();
	struct el_ctrl *c = ctrl();
	struct el_frame *f = data;
	struct el_qslot *slot;
	__u64 vs, view, opnum;
	__u32 key, replica, n;
	int verdict;

	count(EL_PROG_QUORUM, C_SEEN);
	if (!cfg || !c || parse(data, data_end, cfg->my_port, 0) != P_OK || data + sizeof(*f) > data_end) {
		count(EL_PROG_QUORUM, C_ERRORS);
		return Q_PASS;
	}
	/* a PrepareOK carries no payload: the mark's checksum is computed over
	 * exactly these 64 UDP bytes; anything else is for user space to reject */
	if (f->udp.len != bpf_htons(sizeof(struct udphdr) + EL_HDR_LEN)) {
		count(EL_PROG_QUORUM, C_ERRORS);
		return Q_PASS;
	}
	/* a follower's periodic report is for user space (the low-water mark),
	 * not a fresh ack to count */
	if (f->el.flags & EL_F_REPORT) {
		count(EL_PROG_QUORUM, C_PASSED);
		return Q_PASS;
	}
	vs = EL_READ_ONCE(c->view_status);
	n = cfg->n_replicas;
	view = f->el.view;
	opnum = f->el.opnum;
	replica = f->el.replica;
	/* stale or future views, a view change, not the leader: user space decides */
	if (normal_leader(vs, n) != cfg->my_idx || view != EL_VS_VIEW(vs) || replica >= n || replica == cfg->my_idx) {
		count(EL_PROG_QUORUM, C_FALLBACK);
		return Q_PASS;
	}
	/* an ack counts only from the follower it names: a forged one from
	 * elsewhere goes up uncounted, and user space drops it as spoofed */
	if (!peer_sent(f->ip.saddr, f->udp.source, replica, n)) {
		count(EL_PROG_QUORUM, C_ERRORS);
		return Q_PASS;
	}
	key = opnum & (EL_QSLOTS - 1);
	slot = bpf_map_lookup_elem(&el_qslots, &key);
	if (!slot) {
		count(EL_PROG_QUORUM, C_ERRORS);
		return Q_PASS;
	}
	bpf_spin_lock(&slot->lock);
	verdict = el_q_count(&slot->c, view, opnum, replica, cfg->f);
	bpf_spin_unlock(&slot->lock);
	switch (verdict) {
	case EL_Q_COMPLETE:
		f->el.flags |= EL_F_QUORUM;
		f->el.request_id = cfg->quorum_token; /* proof the mark is ours */
		f->udp.check = okframe_udp_csum(f);
		count(EL_PROG_QUORUM, C_PASSED);
		return Q_PASS;
	case EL_Q_NOT_ARMED:
		count(EL_PROG_QUORUM, C_FALLBACK);
		return Q_PASS;
	default: /* counted before the quorum, a duplicate, or after it */
		count(EL_PROG_QUORUM, C_DROPPED);
		return Q_DROP;
	}
}

SEC("xdp")
int el_xdp_quorum(struct xdp_md *ctx)
{
	return quorum((void *)(long)ctx->data, (void *)(long)ctx->data_end) == Q_DROP ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int el_tci_quorum(struct __sk_buff *skb)
{
	/* the dispatcher made the fixed headers linear */
	return quorum((void *)(long)skb->data, (void *)(long)skb->data_end) == Q_DROP ? TC_ACT_SHOT : TC_ACT_OK;
}
