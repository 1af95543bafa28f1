/* SPDX-License-Identifier: MIT
 *
 * el_bpf.h - limits and private map layouts of the eBPF side, shared by the
 * programs (electrode.bpf.c) and the loader (el-loader.c). The structures
 * that the replica also reads are in native/include/el_proto.h.
 */
#ifndef EL_BPF_H
#define EL_BPF_H

#include <linux/types.h>

/* Quorum slots: a PrepareOK for opnum o is counted in slot o % EL_QSLOTS.
 * A power of two so the modulo is a mask; 1024 outstanding ops is far more
 * than any batch/pipeline depth the replica uses. */
#define EL_QSLOTS 1024

/* Largest Prepare UDP payload (el_hdr + ops) the fast reply copies into the
 * ring buffer: a full 1500-byte MTU frame. Larger Prepares go up to user
 * space unchanged (the slow path still works, it is just not accelerated). */
#define EL_FR_MAX_PAYLOAD 1472
/* Bytes reserved after each struct el_fr_record: a power of two >= the
 * above, so a mask proves every copy offset in bounds to the verifier. */
#define EL_FR_RECORD_SPAN 2048

/* Ring buffer size: ~350 full-size records in flight. Power of two pages. */
#define EL_FR_RING_BYTES (512 * 1024)

/* Fixed-size frame of the PrepareOK the fast reply builds in place. */
#define EL_OK_FRAME_LEN (14 + 20 + 8 + 56)

/* Key of the XDP tail-call prog array "el_xdp_progs": enum el_prog_id. */

#endif /* EL_BPF_H */
