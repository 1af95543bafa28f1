// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * el_impair.bpf.c - link impairment for the bench's nemesis on netns labs
 * (TC egress, direct action, on a switch-side veth: the traffic towards one
 * node). Drops or duplicates IPv4 UDP frames at a rate, per interface, from
 * el_impair_cfg. Not a fast path: it runs on the host, where sch_netem may be
 * missing (our own machines' kernels have no netem), and it sees everything a
 * node receives, the fast reply's XDP_TX frames and the broadcast's clones
 * included.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "el_bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Marks a duplicate, so it is not duplicated (or dropped) again. */
#define EL_IMPAIR_MARK 0xe1d0

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32); /* ifindex */
	__type(value, struct el_impair_rate);
} EL_MAP_IMPAIR SEC(".maps");

SEC("tc")
int el_tc_impair(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct el_impair_rate *c;
	__u32 key = skb->ifindex;

	/* TC_ACT_UNSPEC: not a verdict, later filters still see the frame */
	if (skb->mark == EL_IMPAIR_MARK) {
		skb->mark = 0;
		return TC_ACT_UNSPEC;
	}
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP)
		return TC_ACT_UNSPEC;
	c = bpf_map_lookup_elem(&el_impair_cfg, &key);
	if (!c)
		return TC_ACT_UNSPEC;
	if (c->loss && bpf_get_prandom_u32() < c->loss) {
		__sync_fetch_and_add(&c->dropped, 1);
		return TC_ACT_SHOT;
	}
	if (c->dup && bpf_get_prandom_u32() < c->dup) {
		skb->mark = EL_IMPAIR_MARK;
		if (!bpf_clone_redirect(skb, skb->ifindex, 0))
			__sync_fetch_and_add(&c->duplicated, 1);
		skb->mark = 0;
	}
	return TC_ACT_UNSPEC;
}
