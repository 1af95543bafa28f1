// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * el_pass.bpf.c - XDP_PASS for the switch-side end of a node's veth pair.
 *
 * A veth only accepts frames that its peer sends with native XDP_TX (the fast
 * reply) when it runs NAPI itself; seen on kernel 6.18 here, enabling GRO on
 * it was NOT enough, while any native XDP program on it was. This program is
 * that program: it passes everything.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("xdp")
int el_xdp_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}
