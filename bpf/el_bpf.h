/* SPDX-License-Identifier: MIT
 *
 * el_bpf.h - limits and private map layouts of the eBPF side, shared by the
 * programs (*.bpf.c) and the loader (bpf/loader/). The structures that the
 * replica also reads are in native/include/el_proto.h.
 */
#ifndef EL_BPF_H
#define EL_BPF_H

#include <linux/types.h>

/* The names of the maps only the programs and the loader use (the ones the
 * replica opens too are EL_MAP_* in el_proto.h); el_common.h and
 * el_impair.bpf.c declare the maps under these names, the loader finds and
 * names them by these. */
#define EL_MAP_PEERS     el_peers
#define EL_MAP_STATS     el_stats
#define EL_MAP_QSLOTS    el_qslots
#define EL_MAP_XDP_PROGS el_xdp_progs
#define EL_MAP_TC_PROGS  el_tc_progs
#define EL_MAP_IMPAIR    el_impair_cfg

/* Quorum slots (EL_QSLOTS): in el_proto.h, since the leader's window is
 * bounded by them. */

/* Largest Prepare UDP payload (el_hdr + ops) the fast reply copies into the
 * ring buffer: a full frame at the largest MTU a lab may have (3500, the
 * native-XDP limit on 4 KiB pages) minus IPv4 and UDP headers. */
#define EL_FR_MAX_PAYLOAD (3500 - 20 - 8)
/* Bytes after each struct el_fr_record in the staging area: a power of two
 * >= the above, so a mask proves every copy offset in bounds. */
#define EL_FR_RECORD_SPAN 4096

/* Ring buffer size: thousands of small records between two drains (the
 * replica drains at least every tick, 5 ms). Power of two pages. */
#define EL_FR_RING_BYTES (2 * 1024 * 1024)

/* Default size of el_fr_busy; the loader sets the number of possible CPUs. */
#define EL_MAX_CPUS 256

/* Fixed-size frame of the PrepareOK the fast reply builds in place. */
#define EL_OK_FRAME_LEN (14 + 20 + 8 + 56)

/* el_impair_cfg (el_impair.bpf.c, the nemesis' link impairment): rates are
 * thresholds on bpf_get_prandom_u32() (rate * 2^32). */
struct el_impair_rate {
	__u32 loss;
	__u32 dup;
	__u64 dropped;
	__u64 duplicated;
};

/* Keys of the tail-call prog arrays "el_xdp_progs" and "el_tc_progs":
 * enum el_prog_id. */

#endif /* EL_BPF_H */
