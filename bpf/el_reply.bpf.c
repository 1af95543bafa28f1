// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * el_reply.bpf.c - fast reply on followers, tail-called by the ingress
 * dispatcher for Prepares: el_xdp_reply at the XDP hook (answers with
 * XDP_TX), el_tci_reply at TC ingress on veth (answers by redirecting the
 * rewritten skb out of the same device). One decision for both. A Prepare
 * that el_fr_decide() accepts (gate open, lease valid, from this view's
 * leader, starting right after what the log and the ring hold) is copied
 * into the ring buffer el_fr_ring for the replica, el_fr_state advances, and
 * the frame is rewritten in place into the PrepareOK for the leader.
 * Anything else goes up unchanged.
 *
 * The order matters for safety: the record is in the ring BEFORE the
 * PrepareOK leaves, and the whole decision runs between el_fr_busy's enter
 * and exit, so a replica that closed the gate can wait for every program
 * that might still acknowledge, then drain, then build its DoViewChange.
 */
#include "el_common.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* v & mask as an instruction the verifier sees (clang would drop a C mask
 * it can prove redundant after the range checks above it) */
static __always_inline __u32 bound_mask(__u32 v)
{
	asm volatile("%[v] &= %[m]" : [v] "+r"(v) : [m] "i"(EL_FR_RECORD_SPAN - 1));
	return v;
}

/* Entries a fast-reply Prepare may carry: a Prepare of new ops holds at
 * most --batch (64) of them; one with more (a retransmission of many small
 * ops) goes up to user space, which acknowledges it itself. */
#define EL_FR_MAX_ENTRIES 64
/* An entry's header (client id, request id, length) and its op's header. */
#define ENTRY_HDR 18
#define OP_HDR 4

/* v, of which the compiler may assume nothing (so it cannot turn the
 * arithmetic around it back into a branch) */
static __always_inline __u64 opaque(__u64 v)
{
	asm volatile("" : "+r"(v));
	return v;
}

static __always_inline __u16 le16_at(const __u8 *p)
{
	return (__u16)(p[0] | (__u16)p[1] << 8);
}

/*
 * The entries of a Prepare are exactly what user space's decoder accepts
 * (native/src/wire.c: count_entries, el_op_decode): aux entries, each with
 * non-zero client and request ids and an op of a known kind whose key and
 * value lengths are in range and add up to the entry's length, together
 * filling the payload. A PrepareOK from the kernel promises that the replica
 * logs the op; a Prepare its decoder would refuse must go up unacknowledged.
 */
static __always_inline __u32 entries_bad(void *data, void *data_end, __u32 payload_len, __u32 aux)
{
	__u8 *base = (__u8 *)data + EL_HDR_OFFSET + EL_HDR_LEN, *e;
	__u32 end, want, off = 0, n = 0, i, len, kl, vl;
	__u8 op;

	if (aux == 0 || aux > EL_FR_MAX_ENTRIES)
		return 1;
	/* fresh registers (the asm): what the loop learns about them must not
	 * narrow values the rest of the program uses, or every exit of the loop
	 * would be a state of its own for the verifier */
	end = bound_mask(payload_len);
	want = bound_mask(aux);
	for (i = 0; i < EL_FR_MAX_ENTRIES; i++) {
		if (off >= end)
			break;
		if (end - off < ENTRY_HDR + OP_HDR)
			return 1;
		e = base + bound_mask(off);
		if ((void *)(e + ENTRY_HDR + OP_HDR) > data_end)
			return 1;
		if (*(__u64 *)e == 0 || *(__u64 *)(e + 8) == 0)
			return 1;
		len = le16_at(e + 16);
		op = e[ENTRY_HDR];
		kl = e[ENTRY_HDR + 1];
		vl = le16_at(e + ENTRY_HDR + 2);
		if (op < 1 || op > 3 || kl < 1 || kl > 64 || vl > 1024)
			return 1;
		/* a GET carries no value; without a branch on op == 2 that goes on
		 * (two paths into the next entry, 2^64 states for the verifier) */
		if (opaque((opaque(op ^ 2) - 1) >> 63) * vl)
			return 1;
		if (OP_HDR + kl + vl != len || end - off - ENTRY_HDR < len)
			return 1;
		off += ENTRY_HDR + len;
		n++;
	}
	/* no comparison: it would narrow off and n per exit (see above) */
	return (off ^ end) | (n ^ want);
}

/* What the first half decided, for the rewrite after the frame was cut. */
struct reply_plan {
	struct el_peer *leader;
	__u64 view, opnum, commit;
};

/* What el_fr_decide() looks at: el_ctrl, el_fr_state (each field read
 * once), this node's config and the Prepare's header. */
static __always_inline void decide_input(struct el_fr_input *in, struct el_ctrl *c, struct el_fr_state *fr,
					 const struct el_config *cfg, const struct el_frame *f)
{
	in->view_status = EL_READ_ONCE(c->view_status);
	in->lease_ns = EL_READ_ONCE(c->lease_ns);
	in->now_ns = bpf_ktime_get_ns();
	in->fr_view = EL_READ_ONCE(fr->view);
	in->fr_last = EL_READ_ONCE(fr->last_op);
	in->my_idx = cfg->my_idx;
	in->n = cfg->n_replicas;
	in->p_view = f->el.view;
	in->p_opnum = f->el.opnum;
	in->p_sender = f->el.replica;
	in->p_aux = f->el.aux;
	in->p_len = f->el.payload_len + EL_HDR_LEN;
	in->max_len = EL_FR_MAX_PAYLOAD;
}

/* The ring record for a Prepare of plen payload bytes, built in the per-CPU
 * staging area (see el_fr_scratch): whole words up to the end of the frame,
 * then the last bytes of the payload. */
static __always_inline void stage_record(struct el_fr_scratch *scratch, struct el_frame *f, void *data_end, __u32 plen)
{
	__u64 *src, *dst;
	__u8 *srcb, *dstb;
	__u32 i;

	scratch->rec.len = plen;
	scratch->rec.pad = 0;
	src = (__u64 *)((__u8 *)f + EL_HDR_OFFSET);
	dst = (__u64 *)scratch->data;
	for (i = 0; i < EL_FR_MAX_PAYLOAD / 8; i++) {
		if ((void *)(src + i + 1) > data_end)
			break;
		dst[i] = src[i];
	}
	srcb = (__u8 *)f + EL_HDR_OFFSET;
	dstb = scratch->data;
	for (i = 0; i < 8; i++) {
		__u32 off = bound_mask((plen & ~7u) + i);

		if (off >= plen)
			break;
		if ((void *)(srcb + off + 1) > data_end)
			break;
		dstb[off] = srcb[off];
	}
}

/* Decides, and on EL_FR_ACK copies the Prepare into the ring: 1 = answer it,
 * 0 = let it go up unchanged (counted). */
static __always_inline int reply_take(void *data, void *data_end, struct reply_plan *p)
{
	struct el_config *cfg = config();
	struct el_ctrl *c = ctrl();
	struct el_fr_state *fr;
	struct el_fr_busy *busy;
	struct el_fr_scratch *scratch;
	struct el_frame *f = data;
	struct el_fr_input in;
	__u32 key = 0, cpu, plen, leader_idx;
	int verdict;

	count(EL_PROG_REPLY, C_SEEN);
	fr = bpf_map_lookup_elem(&el_fr_state, &key);
	scratch = bpf_map_lookup_elem(&el_fr_scratch, &key);
	cpu = bpf_get_smp_processor_id();
	busy = bpf_map_lookup_elem(&el_fr_busy, &cpu);
	if (!cfg || !c || !fr || !scratch || !busy || parse(data, data_end, cfg->my_port, 0) != P_OK ||
	    data + sizeof(*f) > data_end) {
		count(EL_PROG_REPLY, C_ERRORS);
		return 0;
	}

	/* a locked add: a full barrier between this and the gate read below */
	__sync_fetch_and_add(&busy->enter, 1);
	decide_input(&in, c, fr, cfg, f);
	verdict = el_fr_decide(&in);
	leader_idx = in.p_sender;
	p->leader = bpf_map_lookup_elem(&el_peers, &leader_idx);
	if (verdict != EL_FR_ACK || !p->leader) {
		__sync_fetch_and_add(&busy->exit, 1);
		count(EL_PROG_REPLY, verdict != EL_FR_ACK ? C_FALLBACK : C_ERRORS);
		return 0;
	}
	/* only from the leader's configured address and port: else user space
	 * decides (and drops it, counted as spoofed) */
	if (p->leader->ip != f->ip.saddr || p->leader->port != f->udp.source) {
		__sync_fetch_and_add(&busy->exit, 1);
		count(EL_PROG_REPLY, C_ERRORS);
		return 0;
	}
	/* entries the replica's decoder would refuse: user space decides (and
	 * drops it as malformed) */
	if (entries_bad(data, data_end, f->el.payload_len, in.p_aux)) {
		__sync_fetch_and_add(&busy->exit, 1);
		count(EL_PROG_REPLY, C_ERRORS);
		return 0;
	}
	p->view = in.p_view;
	p->opnum = in.p_opnum;
	plen = bound_mask(in.p_len);

	/* 1. hand the Prepare (UDP payload) to the replica */
	stage_record(scratch, f, data_end, plen);
	/* no wakeup: a self-IPI per record is a VM exit on virtual machines
	 * (REFERENCE.md 7); the replica drains whenever it runs, at least
	 * every tick */
	/* masked again here: with the entry check's registers, plen lives on
	 * the stack across the copy, and 5.8's verifier forgets the bounds of
	 * a spilled scalar that is not a constant (5.10 keeps them) */
	if (bpf_ringbuf_output(&el_fr_ring, scratch, sizeof(struct el_fr_record) + bound_mask(plen),
			       BPF_RB_NO_WAKEUP)) {
		__sync_fetch_and_add(&busy->exit, 1);
		count(EL_PROG_REPLY, C_FULL);
		count(EL_PROG_REPLY, C_FALLBACK);
		return 0;
	}
	/* several CPUs may race here; a value that goes back only re-admits
	 * a Prepare already in the ring (a duplicate the replica skips) */
	if (p->opnum > fr->last_op)
		fr->last_op = p->opnum;
	__sync_fetch_and_add(&busy->exit, 1);
	p->commit = EL_READ_ONCE(c->commit);
	return 1;
}

/* 2. the frame, already cut to EL_OK_FRAME_LEN, becomes the PrepareOK for
 * the leader: 0 = send it, -1 = drop it (the replica has the op; the leader
 * retransmits). */
static __always_inline int reply_rewrite(void *data, void *data_end, const struct reply_plan *p)
{
	struct el_config *cfg = config();
	struct el_frame *f = data;
	__u16 *w;
	__u32 sum, i;

	if (!cfg || data + sizeof(*f) > data_end) {
		count(EL_PROG_REPLY, C_ERRORS);
		return -1;
	}
	__builtin_memcpy(f->eth.h_dest, p->leader->mac, ETH_ALEN);
	__builtin_memcpy(f->eth.h_source, cfg->my_mac, ETH_ALEN);
	f->ip.tot_len = bpf_htons(EL_OK_FRAME_LEN - sizeof(struct ethhdr));
	f->ip.ttl = 64;
	f->ip.saddr = cfg->my_ip;
	f->ip.daddr = p->leader->ip;
	f->ip.frag_off = 0;
	f->ip.check = 0;
	sum = 0;
	w = (__u16 *)((__u8 *)f + sizeof(struct ethhdr));
	for (i = 0; i < sizeof(struct iphdr) / 2; i++)
		sum += w[i];
	f->ip.check = csum_fold(sum);
	f->udp.source = cfg->my_port;
	f->udp.dest = p->leader->port;
	f->udp.len = bpf_htons(sizeof(struct udphdr) + EL_HDR_LEN);
	f->el.type = EL_MSG_PREPARE_OK;
	f->el.flags = EL_F_FROM_XDP;
	f->el.replica = cfg->my_idx;
	f->el.view = p->view;
	f->el.opnum = p->opnum;
	f->el.commit = p->commit;
	f->el.client_id = 0;
	f->el.request_id = 0;
	f->el.payload_len = 0;
	f->el.aux = 0;
	f->udp.check = okframe_udp_csum(f);
	count(EL_PROG_REPLY, C_REPLIED);
	return 0;
}

SEC("xdp")
int el_xdp_reply(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct reply_plan p;

	if (!reply_take(data, data_end, &p))
		return XDP_PASS;
	if (bpf_xdp_adjust_tail(ctx, (int)EL_OK_FRAME_LEN - (int)(data_end - data))) {
		count(EL_PROG_REPLY, C_ERRORS);
		return XDP_DROP;
	}
	if (reply_rewrite((void *)(long)ctx->data, (void *)(long)ctx->data_end, &p))
		return XDP_DROP;
	return XDP_TX;
}

SEC("tc")
int el_tci_reply(struct __sk_buff *skb)
{
	struct reply_plan p;

	/* the dispatcher made the fixed headers linear; the copy into the
	 * ring reads up to data_end, so the whole Prepare must be */
	if ((void *)(long)skb->data + skb->len > (void *)(long)skb->data_end && bpf_skb_pull_data(skb, skb->len)) {
		count(EL_PROG_REPLY, C_SEEN);
		count(EL_PROG_REPLY, C_ERRORS);
		return TC_ACT_OK;
	}
	if (!reply_take((void *)(long)skb->data, (void *)(long)skb->data_end, &p))
		return TC_ACT_OK;
	if (bpf_skb_change_tail(skb, EL_OK_FRAME_LEN, 0)) {
		count(EL_PROG_REPLY, C_ERRORS);
		return TC_ACT_SHOT;
	}
	if (reply_rewrite((void *)(long)skb->data, (void *)(long)skb->data_end, &p))
		return TC_ACT_SHOT;
	/* out of the device it came in on, towards the leader (XDP_TX's twin) */
	return bpf_redirect(skb->ifindex, 0);
}
