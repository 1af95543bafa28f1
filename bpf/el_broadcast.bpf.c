// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * el_broadcast.bpf.c - broadcast on the leader (TC egress, tail-called by
 * el_tc_egress for a Prepare/Commit marked EL_F_BCAST). User space sent ONE
 * copy, addressed to the first follower (lowest index != leader); this clears
 * the mark and clones the frame to every other replica with
 * bpf_clone_redirect, each copy re-addressed (MAC, IP, port) with
 * incremental IP and UDP checksum updates; then the original goes on.
 */
#include "el_common.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

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

SEC("tc")
int el_tc_broadcast(struct __sk_buff *skb)
{
	struct el_config *cfg = config();
	struct el_peer orig, *p;
	void *data, *data_end;
	struct el_frame *f;
	__u32 i, key, n, my, orig_idx, cur_ip, clones = 0;
	long err = 0, cerr = 0;
	__u16 cur_port, flagword, newword;

	count(EL_PROG_BROADCAST, C_SEEN);
	if (!cfg) {
		count(EL_PROG_BROADCAST, C_ERRORS);
		return TC_ACT_OK;
	}
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	f = data;
	if (parse(data, data_end, cfg->my_port, 1) != P_OK || data + sizeof(*f) > data_end) {
		count(EL_PROG_BROADCAST, C_ERRORS);
		return TC_ACT_OK;
	}
	cur_ip = f->ip.daddr;
	cur_port = f->udp.dest;
	flagword = *(__u16 *)((__u8 *)&f->el + __builtin_offsetof(struct el_hdr, flags));
	n = cfg->n_replicas;
	my = cfg->my_idx;
	/* user space addresses the first follower (lowest index != leader);
	 * no search loop: a second loop would multiply the verifier's states */
	orig_idx = my == 0 ? 1 : 0;
	p = bpf_map_lookup_elem(&el_peers, &orig_idx);
	if (!p || p->ip != cur_ip || p->port != cur_port || orig_idx >= n) {
		count(EL_PROG_BROADCAST, C_ERRORS);
		return TC_ACT_OK;
	}
	orig = *p;

	/* Clear the mark first: the clones go through the egress hook again and
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
		/* a clone that fails costs that follower this copy (the leader
		 * retransmits); it must not cost the original too */
		cerr |= bpf_clone_redirect(skb, p->ifindex, 0); /* |=, not a branch: see the header */
		clones++;
	}
	/* the original goes on to the follower user space addressed */
	err |= retarget(skb, cur_ip, cur_port, &orig);
	add(EL_PROG_BROADCAST, C_CLONED, clones);
	if (cerr)
		count(EL_PROG_BROADCAST, C_ERRORS); /* some clone failed: `cloned` counts attempts */
	if (err) {
		/* a failed rewrite may have left a wrong address in place */
		count(EL_PROG_BROADCAST, C_ERRORS);
		return TC_ACT_SHOT;
	}
	count(EL_PROG_BROADCAST, C_PASSED);
	return TC_ACT_OK;
}
