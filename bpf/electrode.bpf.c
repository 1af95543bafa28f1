// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * electrode.bpf.c - the three Electrode fast paths (NSDI '23), written from
 * the paper's description:
 *
 *   el_xdp_dispatch  XDP, every replica: parses Ethernet/IPv4/UDP/el_hdr once
 *                    and tail-calls the fast path for the message type.
 *   el_xdp_quorum    XDP, leader: counts PrepareOKs per (view, opnum) and lets
 *                    only the one completing the quorum reach user space.
 *   el_xdp_reply     XDP, followers: answers an in-order Prepare with a
 *                    PrepareOK (XDP_TX) and hands the Prepare to the replica
 *                    through the ring buffer el_fr_ring.
 *   el_tc_egress     TC clsact egress, every replica: fans a Prepare/Commit
 *                    marked EL_F_BCAST out to every other replica
 *                    (bpf_clone_redirect) and resets quorum slots when a
 *                    Prepare leaves.
 *
 * Linux 5.8 compatible on purpose (REFERENCE.md 4): no CO-RE, no bpf_loop,
 * no atomic fetch instructions (5.12), helpers inlined, bounded loops only.
 * Nothing here knows a port, address or cluster size: they come from the
 * maps the loader fills from the lab plan.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "../native/include/el_proto.h"
#include "el_bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* ---- maps (names and value layouts fixed by el_proto.h) ---------------- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct el_ctrl);
} el_ctrl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct el_config);
} el_config SEC(".maps");

/* max_entries is set by the loader to the cluster size from the plan. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EL_MAX_REPLICAS);
	__type(key, __u32);
	__type(value, struct el_peer);
} el_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EL_FR_RING_BYTES);
} el_fr_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct el_fr_state);
} el_fr_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EL_PROG_MAX);
	__type(key, __u32);
	__type(value, struct el_stat);
} el_stats SEC(".maps");

/* One quorum slot. PrepareOKs arrive on any CPU, so the slot is updated
 * under a spin lock (atomic fetch-and-or would need Linux 5.12). */
struct el_qslot {
	struct bpf_spin_lock lock;
	__u32 count;   /* distinct followers that acknowledged (view, opnum) */
	__u64 view;
	__u64 opnum;
	__u32 acked;   /* bitmap of follower indexes already counted         */
	__u32 done;    /* the quorum-completing PrepareOK went up            */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EL_QSLOTS);
	__type(key, __u32);
	__type(value, struct el_qslot);
} el_qslots SEC(".maps");

/* Tail-call targets of the dispatcher, filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, EL_PROG_MAX);
	__type(key, __u32);
	__type(value, __u32);
} el_xdp_progs SEC(".maps");

/* ---- helpers ------------------------------------------------------------ */

enum el_counter { C_SEEN, C_PASSED, C_DROPPED, C_CLONED, C_REPLIED, C_ERRORS };

static __always_inline void add(__u32 prog, enum el_counter c, __u64 n)
{
	struct el_stat *s = bpf_map_lookup_elem(&el_stats, &prog);

	if (!s)
		return;
	/* per-CPU value: plain additions are safe */
	switch (c) {
	case C_SEEN: s->seen += n; break;
	case C_PASSED: s->passed += n; break;
	case C_DROPPED: s->dropped += n; break;
	case C_CLONED: s->cloned += n; break;
	case C_REPLIED: s->replied += n; break;
	case C_ERRORS: s->errors += n; break;
	}
}

static __always_inline void count(__u32 prog, enum el_counter c)
{
	add(prog, c, 1);
}

static __always_inline struct el_config *config(void)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(&el_config, &k);
}

static __always_inline struct el_ctrl *ctrl(void)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(&el_ctrl, &k);
}

/* The fixed header stack up to and including el_hdr, at fixed offsets. */
struct el_frame {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	struct el_hdr el;
} __attribute__((packed));

_Static_assert(sizeof(struct el_frame) == EL_OK_FRAME_LEN, "frame layout");
_Static_assert(sizeof(struct el_hdr) == EL_HDR_LEN, "el_hdr layout");

enum parse_result { P_NOT_OURS, P_MALFORMED, P_OK };

/* v & 0xffff as an instruction the verifier sees (umax 0xffff, smin 0) */
static __always_inline __u32 bound16(__u32 v)
{
	asm volatile("%[v] &= 0xffff" : [v] "+r"(v));
	return v;
}

/*
 * Classifies a frame: P_OK when it is IPv4 (no options, not a fragment) /
 * UDP to or from `port` and carries a complete el_hdr with our magic and
 * version; P_MALFORMED when it is addressed to our port but is truncated,
 * lies about its length or has a bad magic/version; P_NOT_OURS otherwise.
 */
static __always_inline enum parse_result parse(void *data, void *data_end, __u16 port, int match_src)
{
	struct el_frame *f = data;
	__u16 udp_len;

	if (data + sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr) > data_end)
		return P_NOT_OURS;
	if (f->eth.h_proto != bpf_htons(ETH_P_IP))
		return P_NOT_OURS;
	if (f->ip.version != 4 || f->ip.protocol != IPPROTO_UDP)
		return P_NOT_OURS;
	if ((match_src ? f->udp.source : f->udp.dest) != port)
		return P_NOT_OURS;
	/* ours from here on: anything odd is an error, passed up unchanged */
	if (f->ip.ihl != 5 || (f->ip.frag_off & bpf_htons(0x3fff)))
		return P_MALFORMED;
	if (data + sizeof(*f) > data_end)
		return P_MALFORMED;
	/* Linux 5.8 and 6.1 forget the range of a byte-swapped value, and clang
	 * drops a C mask it can prove redundant: the asm mask is for the verifier */
	udp_len = bound16(bpf_ntohs(f->udp.len));
	if (udp_len < sizeof(struct udphdr) + EL_HDR_LEN)
		return P_MALFORMED;
	if ((void *)&f->udp + udp_len > data_end)
		return P_MALFORMED;
	if (f->el.magic != EL_MAGIC || f->el.version != EL_VERSION)
		return P_MALFORMED;
	if (f->el.payload_len != udp_len - sizeof(struct udphdr) - EL_HDR_LEN)
		return P_MALFORMED;
	return P_OK;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* ---- 4. dispatcher ------------------------------------------------------- */

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
	if (r != P_OK)
		goto pass;
	if (data + sizeof(*f) > data_end) /* for the verifier; parse() checked */
		goto pass;
	if (f->ip.daddr != cfg->my_ip)
		goto pass;
	enabled = cfg->enabled;
	if (f->el.type == EL_MSG_PREPARE_OK && (enabled & EL_FP_QUORUM)) {
		bpf_tail_call(ctx, &el_xdp_progs, EL_PROG_QUORUM);
		count(EL_PROG_DISPATCH, C_ERRORS); /* tail call missing */
	} else if (f->el.type == EL_MSG_PREPARE && (enabled & EL_FP_REPLY)) {
		bpf_tail_call(ctx, &el_xdp_progs, EL_PROG_REPLY);
		count(EL_PROG_DISPATCH, C_ERRORS);
	}
pass:
	count(EL_PROG_DISPATCH, C_PASSED);
	return XDP_PASS;
}

/* ---- 2. quorum prune (leader) ------------------------------------------- */

SEC("xdp")
int el_xdp_quorum(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct el_config *cfg = config();
	struct el_ctrl *c = ctrl();
	struct el_frame *f = data;
	struct el_qslot *slot;
	__u64 view, opnum;
	__u32 key, bit, replica;
	int verdict;

	count(EL_PROG_QUORUM, C_SEEN);
	if (!cfg || !c || parse(data, data_end, cfg->my_port, 0) != P_OK || data + sizeof(*f) > data_end) {
		count(EL_PROG_QUORUM, C_ERRORS);
		return XDP_PASS;
	}
	view = f->el.view;
	opnum = f->el.opnum;
	replica = f->el.replica;
	/* stale or future views, view changes, not the leader: user space decides */
	if (c->status != EL_STATUS_NORMAL || c->leader_idx != cfg->my_idx || view != c->view ||
	    replica >= cfg->n_replicas || replica >= 32 || replica == cfg->my_idx) {
		count(EL_PROG_QUORUM, C_PASSED);
		return XDP_PASS;
	}
	key = opnum & (EL_QSLOTS - 1);
	slot = bpf_map_lookup_elem(&el_qslots, &key);
	if (!slot) {
		count(EL_PROG_QUORUM, C_ERRORS);
		return XDP_PASS;
	}
	bit = 1u << replica;
	verdict = XDP_PASS;
	bpf_spin_lock(&slot->lock);
	if (slot->view == view && slot->opnum == opnum) {
		if (slot->acked & bit) {
			verdict = XDP_DROP; /* duplicate from the same follower */
		} else {
			slot->acked |= bit;
			slot->count++;
			if (slot->count == cfg->f)
				slot->done = 1; /* this one completes the quorum: up it goes */
			else
				verdict = XDP_DROP; /* before or after the quorum: redundant */
		}
	}
	/* else: no Prepare for (view, opnum) seen leaving this node; pass it */
	bpf_spin_unlock(&slot->lock);
	count(EL_PROG_QUORUM, verdict == XDP_DROP ? C_DROPPED : C_PASSED);
	return verdict;
}

/* ---- 3. fast reply (followers) ------------------------------------------ */

SEC("xdp")
int el_xdp_reply(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct el_config *cfg = config();
	struct el_ctrl *c = ctrl();
	struct el_fr_state *fr;
	struct el_frame *f = data;
	struct el_peer *leader;
	struct el_fr_record *rec;
	__u8 *src, *dst;
	__u64 base, view, opnum, commit;
	__u32 key = 0, plen, leader_idx, i;
	__u16 *w;
	__u32 sum;

	count(EL_PROG_REPLY, C_SEEN);
	fr = bpf_map_lookup_elem(&el_fr_state, &key);
	if (!cfg || !c || !fr || parse(data, data_end, cfg->my_port, 0) != P_OK || data + sizeof(*f) > data_end) {
		count(EL_PROG_REPLY, C_ERRORS);
		return XDP_PASS;
	}
	view = f->el.view;
	opnum = f->el.opnum;
	leader_idx = c->leader_idx;
	if (c->status != EL_STATUS_NORMAL || view != c->view || leader_idx == cfg->my_idx ||
	    f->el.replica != leader_idx || f->el.aux == 0)
		goto pass;
	base = c->last_op;
	if (fr->view == view && fr->last_op > base)
		base = fr->last_op;
	if (opnum - f->el.aux != base)
		goto pass; /* gap or old op: user space handles it */
	plen = f->el.payload_len + EL_HDR_LEN;
	if (plen > EL_FR_MAX_PAYLOAD)
		goto pass;
	leader = bpf_map_lookup_elem(&el_peers, &leader_idx);
	if (!leader) {
		count(EL_PROG_REPLY, C_ERRORS);
		return XDP_PASS;
	}

	/* 1. hand the Prepare (UDP payload) to the replica */
	rec = bpf_ringbuf_reserve(&el_fr_ring, sizeof(*rec) + EL_FR_RECORD_SPAN, 0);
	if (!rec) {
		count(EL_PROG_REPLY, C_ERRORS); /* ring full: slow path */
		return XDP_PASS;
	}
	rec->len = plen;
	rec->pad = 0;
	src = (__u8 *)&f->el;
	dst = (__u8 *)(rec + 1);
	for (i = 0; i < EL_FR_MAX_PAYLOAD / 8; i++) {
		if (i * 8 + 8 > plen)
			break;
		if ((void *)(src + i * 8 + 8) > data_end)
			break;
		*(__u64 *)(dst + i * 8) = *(__u64 *)(src + i * 8);
	}
	/* the last 0..7 bytes; a constant trip count keeps the verifier's
	 * exploration linear (a variable start point made it exceed 1M insns) */
	for (i = 0; i < 8; i++) {
		/* masked so every register copy clang makes stays provably
		 * inside both the packet range and the reserved record */
		__u32 off = ((plen & ~7u) + i) & (EL_FR_RECORD_SPAN - 1);

		if (off >= plen)
			break;
		if ((void *)(src + off + 1) > data_end)
			break;
		dst[off] = src[off];
	}
	bpf_ringbuf_submit(rec, 0);
	fr->view = view;
	fr->last_op = opnum;
	commit = c->commit;

	/* 2. turn the frame into the PrepareOK for the leader */
	if (bpf_xdp_adjust_tail(ctx, (int)EL_OK_FRAME_LEN - (int)(data_end - data))) {
		count(EL_PROG_REPLY, C_ERRORS);
		return XDP_DROP; /* the replica has the op; the leader retransmits */
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	f = data;
	if (data + sizeof(*f) > data_end) {
		count(EL_PROG_REPLY, C_ERRORS);
		return XDP_DROP;
	}
	__builtin_memcpy(f->eth.h_dest, leader->mac, ETH_ALEN);
	__builtin_memcpy(f->eth.h_source, cfg->my_mac, ETH_ALEN);
	f->ip.tot_len = bpf_htons(EL_OK_FRAME_LEN - sizeof(struct ethhdr));
	f->ip.ttl = 64;
	f->ip.saddr = cfg->my_ip;
	f->ip.daddr = leader->ip;
	f->ip.frag_off = 0;
	f->ip.check = 0;
	sum = 0;
	w = (__u16 *)((__u8 *)data + sizeof(struct ethhdr));
	for (i = 0; i < sizeof(struct iphdr) / 2; i++)
		sum += w[i];
	f->ip.check = csum_fold(sum);
	f->udp.source = cfg->my_port;
	f->udp.dest = leader->port;
	f->udp.len = bpf_htons(sizeof(struct udphdr) + EL_HDR_LEN);
	f->udp.check = 0;
	f->el.type = EL_MSG_PREPARE_OK;
	f->el.flags = EL_F_FROM_XDP;
	f->el.replica = cfg->my_idx;
	f->el.view = view;
	f->el.opnum = opnum;
	f->el.commit = commit;
	f->el.client_id = 0;
	f->el.request_id = 0;
	f->el.payload_len = 0;
	f->el.aux = 0;
	/* UDP checksum over the pseudo header and the 64 bytes of UDP */
	sum = (f->ip.saddr & 0xffff) + (f->ip.saddr >> 16) + (f->ip.daddr & 0xffff) + (f->ip.daddr >> 16) +
	      bpf_htons(IPPROTO_UDP) + f->udp.len;
	w = (__u16 *)((__u8 *)data + sizeof(struct ethhdr) + sizeof(struct iphdr));
	for (i = 0; i < (sizeof(struct udphdr) + EL_HDR_LEN) / 2; i++)
		sum += w[i];
	f->udp.check = csum_fold(sum) ?: 0xffff;
	count(EL_PROG_REPLY, C_REPLIED);
	return XDP_TX;
pass:
	count(EL_PROG_REPLY, C_PASSED);
	return XDP_PASS;
}

/* ---- 1. broadcast (TC egress) + quorum slot reset ------------------------ */

#define IP_CSUM_OFF (sizeof(struct ethhdr) + __builtin_offsetof(struct iphdr, check))
#define IP_DST_OFF (sizeof(struct ethhdr) + __builtin_offsetof(struct iphdr, daddr))
#define UDP_DPORT_OFF (sizeof(struct ethhdr) + sizeof(struct iphdr) + __builtin_offsetof(struct udphdr, dest))
#define UDP_CSUM_OFF (sizeof(struct ethhdr) + sizeof(struct iphdr) + __builtin_offsetof(struct udphdr, check))
#define EL_FLAGS_OFF (EL_HDR_OFFSET + __builtin_offsetof(struct el_hdr, flags))

/* Points the frame at another replica: MAC, IP and port, fixing the IPv4
 * header checksum and the UDP checksum incrementally (the helpers handle
 * CHECKSUM_PARTIAL: only the pseudo-header part is folded in then). */
static __always_inline long retarget(struct __sk_buff *skb, __u32 cur_ip, __u16 cur_port, const struct el_peer *p)
{
	long err = 0;

	/* no early returns: branches inside the fan-out loop multiply the
	 * verifier's states; errors are collected and counted once */
	err |= bpf_skb_store_bytes(skb, 0, p->mac, ETH_ALEN, 0);
	err |= bpf_l3_csum_replace(skb, IP_CSUM_OFF, cur_ip, p->ip, sizeof(__u32));
	err |= bpf_l4_csum_replace(skb, UDP_CSUM_OFF, cur_ip, p->ip, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | sizeof(__u32));
	err |= bpf_skb_store_bytes(skb, IP_DST_OFF, &p->ip, sizeof(__u32), 0);
	err |= bpf_l4_csum_replace(skb, UDP_CSUM_OFF, cur_port, p->port, BPF_F_MARK_MANGLED_0 | sizeof(__u16));
	err |= bpf_skb_store_bytes(skb, UDP_DPORT_OFF, &p->port, sizeof(__u16), 0);
	return err;
}

static __always_inline void reset_slot(__u64 view, __u64 opnum)
{
	__u32 key = opnum & (EL_QSLOTS - 1);
	struct el_qslot *slot = bpf_map_lookup_elem(&el_qslots, &key);

	if (!slot)
		return;
	bpf_spin_lock(&slot->lock);
	/* a new op, or a retransmission after the quorum went up: count again.
	 * The copies of one Prepare sent while counting leave the slot alone. */
	if (slot->view != view || slot->opnum != opnum || slot->done) {
		slot->view = view;
		slot->opnum = opnum;
		slot->count = 0;
		slot->acked = 0;
		slot->done = 0;
	}
	bpf_spin_unlock(&slot->lock);
}

/* A frame shorter than the fixed headers + el_hdr: copied out (no packet
 * pointers, so it does not fork the main program's verification) and
 * counted as an error if it is UDP from our port. */
static __always_inline int short_frame(struct __sk_buff *skb, const struct el_config *cfg)
{
	struct el_frame f;

	if (bpf_skb_load_bytes(skb, 0, &f, EL_HDR_OFFSET))
		return TC_ACT_OK;
	if (f.eth.h_proto == bpf_htons(ETH_P_IP) && f.ip.protocol == IPPROTO_UDP && f.udp.source == cfg->my_port) {
		count(EL_PROG_BROADCAST, C_SEEN);
		count(EL_PROG_BROADCAST, C_ERRORS);
	}
	return TC_ACT_OK;
}

SEC("tc")
int el_tc_egress(struct __sk_buff *skb)
{
	struct el_config *cfg = config();
	struct el_ctrl *c = ctrl();
	struct el_peer orig, *p;
	void *data, *data_end;
	struct el_frame *f;
	__u32 i, key, n, my, orig_idx, cur_ip, clones = 0;
	long err = 0;
	__u16 cur_port, flagword, newword;
	__u8 type, flags;
	__u64 view, opnum;

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
		count(EL_PROG_BROADCAST, C_SEEN);
		count(EL_PROG_BROADCAST, C_ERRORS);
		return TC_ACT_OK;
	case P_OK:
		break;
	}
	if (data + sizeof(*f) > data_end || f->ip.saddr != cfg->my_ip)
		return TC_ACT_OK;
	type = f->el.type;
	flags = f->el.flags;
	view = f->el.view;
	opnum = f->el.opnum;
	my = cfg->my_idx;
	if (type == EL_MSG_PREPARE && (cfg->enabled & EL_FP_QUORUM) && c->leader_idx == my)
		reset_slot(view, opnum);
	if (!(flags & EL_F_BCAST) || (type != EL_MSG_PREPARE && type != EL_MSG_COMMIT))
		return TC_ACT_OK;

	count(EL_PROG_BROADCAST, C_SEEN);
	if (!(cfg->enabled & EL_FP_BROADCAST) || c->leader_idx != my) {
		/* the replica refuses --fast-broadcast without the bit; pass it */
		count(EL_PROG_BROADCAST, C_PASSED);
		return TC_ACT_OK;
	}
	cur_ip = f->ip.daddr;
	cur_port = f->udp.dest;
	flagword = *(__u16 *)((__u8 *)&f->el + __builtin_offsetof(struct el_hdr, flags));
	n = cfg->n_replicas;
	/* user space addresses the first follower (lowest index != leader);
	 * no search loop: a second loop would multiply the verifier's states */
	orig_idx = my == 0 ? 1 : 0;
	p = bpf_map_lookup_elem(&el_peers, &orig_idx);
	if (!p || p->ip != cur_ip || p->port != cur_port || orig_idx >= n) {
		count(EL_PROG_BROADCAST, C_ERRORS);
		return TC_ACT_OK;
	}
	orig = *p;

	/* Clear the mark first: the clones go through this hook again and
	 * must not be fanned out a second time. */
	newword = flagword; /* flags is the first byte in memory */
	((__u8 *)&newword)[0] &= ~EL_F_BCAST;
	if (bpf_l4_csum_replace(skb, UDP_CSUM_OFF, flagword, newword, BPF_F_MARK_MANGLED_0 | sizeof(__u16)) ||
	    bpf_skb_store_bytes(skb, EL_FLAGS_OFF, &newword, sizeof(newword), 0)) {
		count(EL_PROG_BROADCAST, C_ERRORS);
		return TC_ACT_SHOT;
	}

	for (i = 0; i < EL_MAX_REPLICAS; i++) {
		if (i >= n)
			break;
		if (i == my || i == orig_idx)
			continue;
		key = i;
		p = bpf_map_lookup_elem(&el_peers, &key);
		if (!p)
			break;
		err |= retarget(skb, cur_ip, cur_port, p);
		cur_ip = p->ip;
		cur_port = p->port;
		err |= bpf_clone_redirect(skb, p->ifindex, 0);
		clones++;
	}
	/* the original goes on to the follower user space addressed */
	err |= retarget(skb, cur_ip, cur_port, &orig);
	add(EL_PROG_BROADCAST, C_CLONED, clones);
	if (err) {
		/* a failed rewrite may have left a wrong address in place */
		count(EL_PROG_BROADCAST, C_ERRORS);
		return TC_ACT_SHOT;
	}
	count(EL_PROG_BROADCAST, C_PASSED);
	return TC_ACT_OK;
}
