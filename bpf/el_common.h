/* SPDX-License-Identifier: (MIT OR GPL-2.0)
 *
 * el_common.h - what every electrode-lab eBPF object shares: the maps (each
 * object declares all of them; the loader creates them once, with the first
 * object, and hands the same maps to the others), the counters, the frame
 * parser and checksum helpers.
 *
 * Linux 5.8 on purpose (REFERENCE.md 4): no CO-RE, no bpf_loop, no atomic
 * fetch instructions (5.12), every helper static __always_inline, bounded
 * loops only. Nothing here knows a port, address or cluster size.
 */
#ifndef EL_COMMON_H
#define EL_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "../native/include/el_proto.h"
#include "../native/include/el_fastpath_rules.h"
#include "el_bpf.h"

/* ---- maps (names and value layouts fixed by el_proto.h) ---------------- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct el_ctrl);
} EL_MAP_CTRL SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct el_config);
} EL_MAP_CONFIG SEC(".maps");

/* max_entries is set by the loader to the cluster size from the plan. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EL_MAX_REPLICAS);
	__type(key, __u32);
	__type(value, struct el_peer);
} EL_MAP_PEERS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EL_FR_RING_BYTES);
} EL_MAP_FR_RING SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct el_fr_state);
} EL_MAP_FR_STATE SEC(".maps");

/* max_entries is set by the loader to the number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EL_MAX_CPUS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct el_fr_busy);
} EL_MAP_FR_BUSY SEC(".maps");

/* Per-CPU staging area for a ring record. The 5.8 verifier forgets the type
 * of a pointer from bpf_ringbuf_reserve once clang spills it to the stack
 * ("R5 invalid mem access 'inv'"), while a map value pointer survives a
 * spill: so the record is built here and copied with bpf_ringbuf_output. */
struct el_fr_scratch {
	struct el_fr_record rec;
	__u8 data[EL_FR_RECORD_SPAN];
	/* the entry check reads an entry's 22 header bytes at a masked offset */
	__u8 slack[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct el_fr_scratch);
} el_fr_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EL_PROG_MAX);
	__type(key, __u32);
	__type(value, struct el_stat);
} EL_MAP_STATS SEC(".maps");

/* One quorum slot. PrepareOKs arrive on any CPU, so the slot is updated
 * under a spin lock (atomic fetch-and-or would need Linux 5.12). */
struct el_qslot {
	struct bpf_spin_lock lock;
	__u32 pad;
	struct el_qcount c;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EL_QSLOTS);
	__type(key, __u32);
	__type(value, struct el_qslot);
} EL_MAP_QSLOTS SEC(".maps");

/* Tail-call targets of the dispatchers, filled by the loader with the
 * programs this kernel accepted. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, EL_PROG_MAX);
	__type(key, __u32);
	__type(value, __u32);
} EL_MAP_XDP_PROGS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, EL_PROG_MAX);
	__type(key, __u32);
	__type(value, __u32);
} EL_MAP_TC_PROGS SEC(".maps");

/* ---- counters ------------------------------------------------------------ */

enum el_counter { C_SEEN, C_PASSED, C_DROPPED, C_CLONED, C_REPLIED, C_FALLBACK, C_FULL, C_ERRORS };

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
	case C_FALLBACK: s->fallback += n; break;
	case C_FULL: s->full += n; break;
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

/* One aligned load the compiler may not split or repeat. */
#define EL_READ_ONCE(x) (*(volatile typeof(x) *)&(x))

/* The leader of the view el_ctrl holds, or n (nobody) outside normal status. */
static __always_inline __u32 normal_leader(__u64 vs, __u32 n)
{
	if (EL_VS_STATUS(vs) != EL_STATUS_NORMAL || n == 0)
		return EL_MAX_REPLICAS;
	return (__u32)(EL_VS_VIEW(vs) % n);
}

/* ---- peers --------------------------------------------------------------- */

/* The frame comes from the configured address and port of replica idx
 * (el_peers, filled by the loader from the plan): the rule user space
 * applies to every replica message too (native/src/peer.c). A sender on the
 * client node that writes a replica's index into its datagram fails it; one
 * that also forges its IP source address does not (README "Authenticated
 * peers"). */
static __always_inline int peer_sent(__u32 saddr, __u16 sport, __u32 idx, __u32 n)
{
	struct el_peer *p;
	__u32 key = idx;

	if (idx >= n)
		return 0;
	p = bpf_map_lookup_elem(&el_peers, &key);
	return p && p->ip == saddr && p->port == sport;
}

/* ---- frames -------------------------------------------------------------- */

/* The fixed header stack up to and including el_hdr, at fixed offsets. */
struct el_frame {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	struct el_hdr el;
} __attribute__((packed));

_Static_assert(sizeof(struct el_frame) == EL_OK_FRAME_LEN, "frame layout");
_Static_assert(sizeof(struct el_hdr) == EL_HDR_LEN, "el_hdr layout");

/* P_FRAGMENT: an IP fragment of ours (a large DoViewChange or state transfer):
 * no whole el_hdr to act on, nothing wrong either; it goes up unchanged. */
enum parse_result { P_NOT_OURS, P_MALFORMED, P_FRAGMENT, P_OK };

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
	if (f->ip.frag_off & bpf_htons(0x3fff))
		return P_FRAGMENT;
	if (f->ip.ihl != 5)
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

/* The full UDP checksum of a frame whose UDP part is exactly the 64 bytes of
 * a PrepareOK (header + el_hdr, no payload): the frame is small and of fixed
 * size, so summing it is cheaper than tracking what changed. */
static __always_inline __u16 okframe_udp_csum(struct el_frame *f)
{
	__u16 *w = (__u16 *)((__u8 *)f + sizeof(struct ethhdr) + sizeof(struct iphdr));
	__u32 sum, i;

	sum = (f->ip.saddr & 0xffff) + (f->ip.saddr >> 16) + (f->ip.daddr & 0xffff) + (f->ip.daddr >> 16) +
	      bpf_htons(IPPROTO_UDP) + f->udp.len;
	f->udp.check = 0;
	for (i = 0; i < (sizeof(struct udphdr) + EL_HDR_LEN) / 2; i++)
		sum += w[i];
	return csum_fold(sum) ?: 0xffff;
}

/* ---- the ingress dispatchers (XDP and TC ingress) ------------------------ */

enum ingress_verdict { IN_PASS, IN_DROP, IN_QUORUM, IN_REPLY };

/*
 * What el_xdp_dispatch and el_tc_ingress decide for one frame: pass it up,
 * drop it (a forged quorum mark), or hand it to the quorum prune or the fast
 * reply (the caller tail-calls, in its own context). Counts under
 * EL_PROG_DISPATCH: seen, errors (malformed, forged), fallback (fragments).
 */
static __always_inline enum ingress_verdict ingress_decide(void *data, void *data_end, const struct el_config *cfg)
{
	struct el_frame *f = data;
	enum parse_result r = parse(data, data_end, cfg->my_port, 0);

	if (r == P_MALFORMED)
		count(EL_PROG_DISPATCH, C_ERRORS);
	else if (r == P_FRAGMENT)
		count(EL_PROG_DISPATCH, C_FALLBACK);
	if (r != P_OK || data + sizeof(*f) > data_end || f->ip.daddr != cfg->my_ip)
		return IN_PASS;
	if (f->el.type == EL_MSG_PREPARE_OK) {
		/* the quorum mark is the kernel's word that a quorum formed:
		 * one arriving from the wire is forged, whatever is switched on */
		if (f->el.flags & EL_F_QUORUM) {
			count(EL_PROG_DISPATCH, C_ERRORS);
			count(EL_PROG_DISPATCH, C_DROPPED);
			return IN_DROP;
		}
		return cfg->enabled & EL_FP_QUORUM ? IN_QUORUM : IN_PASS;
	}
	if (f->el.type == EL_MSG_PREPARE && (cfg->enabled & EL_FP_REPLY))
		return IN_REPLY;
	return IN_PASS;
}

/*
 * The switch both ingress dispatchers run on ingress_decide()'s verdict, in
 * their own context and through their own prog array (el_xdp_progs or
 * el_tc_progs): a tail call does not return, so falling through means the
 * fast path is not loaded and the frame goes up unmarked. 1: drop the frame;
 * 0: pass it up (counted as passed).
 */
static __always_inline int ingress_dispatch(void *ctx, void *progs, void *data, void *data_end,
					    const struct el_config *cfg)
{
	switch (ingress_decide(data, data_end, cfg)) {
	case IN_DROP:
		return 1;
	case IN_QUORUM:
		bpf_tail_call(ctx, progs, EL_PROG_QUORUM);
		count(EL_PROG_DISPATCH, C_ERRORS);
		break;
	case IN_REPLY:
		bpf_tail_call(ctx, progs, EL_PROG_REPLY);
		count(EL_PROG_DISPATCH, C_ERRORS);
		break;
	case IN_PASS:
		break;
	}
	count(EL_PROG_DISPATCH, C_PASSED);
	return 0;
}

#endif /* EL_COMMON_H */
