/* SPDX-License-Identifier: MIT
 *
 * replica.h - the state of one VR replica, shared by the protocol (vr.c)
 * and the process around it (replica.c: options, sockets, epoll loop, dump).
 */
#ifndef EL_REPLICA_H
#define EL_REPLICA_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fastpath.h"
#include "store.h"
#include "wire.h"

#define RECV_BATCH   16
#define TICK_US      5000u
/* A DoViewChange / StartView also carries up to this many committed ops
 * before the sender's commit point, so a new leader that lags a little
 * rarely needs a state transfer to finish the view change. */
#define VC_EXTRA_OPS 256u
/* --fast-quorum: a passed-up PrepareOK is trusted as "quorum reached" only for
 * an op this recent, so the kernel's quorum slot for it (slots are reused
 * every 1024 ops in bpf/) cannot have been taken by a later op. */
#define FQ_WINDOW    512u

struct dvc_rec {
	uint8_t *buf;        /* raw datagram (owned)                        */
	size_t len;
	struct el_msg m;     /* decoded, points into buf                    */
};

struct opts {
	const char *config;
	long index;
	uint32_t batch;
	long cpu;
	const char *pin_dir;
	int fast_broadcast, fast_quorum, fast_reply;
	uint64_t crash_after;
	double drop_rate, dup_rate, reorder_rate;
	const char *dump_log;
	uint64_t heartbeat_us, vc_timeout_us, retransmit_us;
};

struct pending {
	uint64_t client_id, request_id;
	uint16_t len;
	uint8_t data[EL_MAX_OP_LEN];
};

struct replica {
	struct opts o;
	struct el_cluster cl;
	uint32_t me, n, f;
	int sock, tfd, sfd, epfd, ring_fd;

	uint64_t view, last_normal_view;
	uint32_t status;
	struct el_log log;
	uint64_t commit, executed;
	struct el_kv kv;
	struct el_ctable ct;
	struct el_quorum q;

	/* view change */
	uint64_t *svc_view;        /* per replica: view of its latest SVC   */
	struct dvc_rec *dvc;       /* per replica: its DVC for our view      */
	int sent_dvc;
	uint8_t *my_dvc;           /* what we sent, for retransmission       */
	size_t my_dvc_len;

	/* timers, CLOCK_MONOTONIC us */
	uint64_t now, last_heard, vc_started, vc_timeout_cur, last_sent, last_retx,
		retx_commit, last_get_state, last_vc_resend;
	uint64_t get_state_at;     /* log.last when we last asked for state  */

	struct pending *pend;
	size_t npend, pend_cap;

	/* --fast-quorum: which op numbers ended a Prepare we sent in this view
	 * (the kernel only counts PrepareOKs for those; others it passes up
	 * uncounted). One bit per op, grown with the log. */
	uint8_t *prep_end;
	size_t prep_end_bytes;

	struct el_fastpath *fp;
	struct el_ctrl ctrl_written;
	int ctrl_valid;

	uint64_t rng;
	uint64_t executed_ops;
	uint64_t stat_malformed, stat_dropped, stat_rx, stat_fr_records, stat_dup, stat_reordered;
	/* --reorder-rate: one datagram held back and handled after the next */
	uint8_t *held;
	size_t held_len;
	struct sockaddr_in held_src;
	int stop;
	uint8_t sbuf[EL_MAX_DGRAM];
	uint8_t reply_buf[EL_MAX_REPLY];
};


/* vr.c: the protocol. Each handles one datagram (from the socket, or with
 * from_kernel from the fast-reply ring buffer); on_tick runs the timers. */
void vr_handle(struct replica *r, const void *buf, size_t len, const struct sockaddr_in *src,
	       int from_kernel);
void vr_on_tick(struct replica *r);
/* Turns queued client requests into Prepares (after a batch of datagrams). */
void vr_flush_pending(struct replica *r);
/* Writes el_ctrl if view/status/leader/last op/commit changed. */
void vr_sync_ctrl(struct replica *r);
/* el_ctrl + el_fr_state reset (start, view change, state install). */
void vr_reset_fast_reply(struct replica *r);

#endif
