/* SPDX-License-Identifier: MIT
 * fastpath.h - the replica's side of the eBPF fast paths: the pinned maps
 * el_ctrl (mapped read-write), el_config (read-only), el_fr_state and
 * el_fr_busy (mapped), and the el_fr_ring ring buffer. Isolated here so the
 * protocol core never touches libbpf. x86-64 memory ordering (TSO) is
 * assumed where the programs read what we store (see el_proto.h). */
#ifndef EL_FASTPATH_H
#define EL_FASTPATH_H

#include <stddef.h>
#include <stdint.h>
#include "../include/el_proto.h"

struct el_fastpath;

/* Opens DIR's maps (need_ring: el_fr_state, el_fr_busy and el_fr_ring too).
 * Returns NULL with a one-line reason in err. */
struct el_fastpath *el_fp_open(const char *dir, int need_ring, char *err, size_t errlen);
void el_fp_close(struct el_fastpath *fp);

/* The pinned el_config (n, f, own index, address) and el_peers (every
 * replica's address and port) against this replica's config: the kernel
 * counts quorums on ITS f and checks senders against ITS peers, so a pin dir
 * attached for another cluster or another node must be refused. Returns 0,
 * or -1 with a one-line reason in err. */
struct sockaddr_in;
int el_fp_check_cluster(const struct el_fastpath *fp, const char *dir, uint32_t n, uint32_t f, uint32_t idx,
			const struct sockaddr_in *addrs, char *err, size_t errlen);

/* el_config.enabled / .loaded, read live. */
uint32_t el_fp_enabled(const struct el_fastpath *fp);
uint32_t el_fp_loaded(const struct el_fastpath *fp);
/* el_config.quorum_token: what a genuine EL_F_QUORUM PrepareOK carries. */
uint64_t el_fp_quorum_token(const struct el_fastpath *fp);

/* el_ctrl: the state the programs act on. */
void el_fp_publish(struct el_fastpath *fp, uint64_t view, uint32_t status, uint64_t last_op, uint64_t commit);
/* The fast reply acknowledges only until now + lease: renewed every tick. */
void el_fp_renew_lease(struct el_fastpath *fp, uint64_t lease_ns);
void el_fp_end_lease(struct el_fastpath *fp);

/* Closes the gate for `view` and waits until no fast-reply program that
 * might have seen it open is still running. Returns how long it waited (ns). */
uint64_t el_fp_close_gate(struct el_fastpath *fp, uint64_t view);
/* el_fr_state = {view, last_op} (only while the gate is closed). */
void el_fp_arm_reply(struct el_fastpath *fp, uint64_t view, uint64_t last_op);
/* The kernel may go on from last_op (ops that came up the slow path). */
void el_fp_reply_progress(struct el_fastpath *fp, uint64_t last_op);

/* Ring buffer: calls cb per record payload (the UDP payload after struct
 * el_fr_record); returns the number of records. */
typedef void (*el_fp_record_cb)(void *ctx, const void *data, size_t len);
int el_fp_consume(struct el_fastpath *fp, el_fp_record_cb cb, void *ctx);

#endif
