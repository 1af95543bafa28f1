/* SPDX-License-Identifier: MIT
 *
 * vr.h - the Viewstamped Replication core (VR Revisited), as a machine you
 * can step: it consumes datagrams, fast-reply ring records and timer ticks,
 * and emits the datagrams it would send and the state the eBPF side must
 * see through the callbacks of struct vr_env. No sockets, no clock, no
 * randomness of its own inside: the replica process (replica.c), the unit
 * tests and the simulation (tests/sim.c) each provide an environment.
 * Semantics of every message: native/PROTOCOL.md.
 */
#ifndef EL_VR_H
#define EL_VR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "wire.h"

/* A DoViewChange / StartView also carries up to this many committed ops
 * before the sender's commit point, so a new leader that lags a little
 * rarely needs a state transfer to finish the view change. Replicas also
 * keep this many ops before the point every replica has committed. */
#define VC_EXTRA_OPS 256u
/* Uncommitted bytes (entry headers + ops) a leader lets into its log: the
 * uncommitted suffix of every replica then fits one DoViewChange. */
#define VR_DEFAULT_WINDOW (EL_MAX_DGRAM - EL_HDR_LEN - 4096)
/* A replica the leader has not heard from for this long no longer holds
 * back the low-water mark (the log is truncated past it; one that comes
 * back behind the log's start catches up by a snapshot). Bounds the log
 * while a replica is dead. */
#define VR_DEFAULT_LWM_GRACE_US 10000000ull
/* Nor does any replica, heard from or not, hold back more than this many
 * committed ops: within the grace a fast leader would otherwise keep grace x
 * rate ops (270,000 at 27,000 ops/s, about 25 MB) for a follower that is
 * merely paused. A follower further behind catches up by a snapshot. With
 * VC_EXTRA_OPS and the uncommitted window this bounds the log at about
 * 16,700 entries (README "Memory"). */
#define VR_DEFAULT_LOG_HOLD 16384ull
/* Client requests queued at a leader before a Prepare takes them. */
#define VR_MAX_PENDING 4096
/* view claims may run this far ahead of ours beyond one view per timeout
 * since we were last normal (retries, replicas timing out out of step) */
#define VR_VIEW_SLACK 8
/* A replica that keeps asking for a later view this many view-change
 * timeouts, though our leader is alive, cannot come back by itself (it sent
 * a DoViewChange for that view, so it may not return to ours): we follow. */
#define VR_STICKY_TIMEOUTS 4
/* A snapshot request is answered with the chunks of this many bytes from
 * the offset asked for; the receiver asks for the next burst when the last
 * chunk of one arrived, and again from where it is after --retransmit-ms. */
#define VR_SNAP_BURST (64u << 10)
/* A served snapshot is kept this long after its last request, and the log
 * keeps the ops after it for as long (the receiver fetches them next). */
#define VR_SNAP_KEEP_US 2000000ull
#define VR_SNAP_FREE_US 10000000ull

struct vr_opts {
	uint32_t batch;            /* ops per Prepare (1..64)                       */
	uint64_t heartbeat_us, vc_timeout_us, retransmit_us;
	uint64_t crash_after;      /* --crash-after: SIGSEGV after that many ops     */
	size_t max_prepare;        /* largest Prepare datagram: the MTU's UDP payload,
	                            * so a Prepare is never fragmented (one op that
	                            * does not fit still goes, without the fast paths) */
	size_t window_bytes;       /* uncommitted bytes a leader allows              */
	uint64_t window_ops;       /* uncommitted ops a leader allows (0 = no bound):
	                            * EL_QSLOTS with the kernel's quorum prune      */
	size_t max_clients;        /* client table size (0 = EL_CTABLE_DEFAULT_MAX)  */
	uint64_t lwm_grace_us;     /* 0 = VR_DEFAULT_LWM_GRACE_US                    */
	uint64_t log_hold_ops;     /* 0 = VR_DEFAULT_LOG_HOLD                        */
	int fast_broadcast;        /* send ONE marked copy while el_config has the bit */
	int kernel_quorum;         /* a PrepareOK marked EL_F_QUORUM that carries the
	                            * kernel's quorum token proves a quorum: only the
	                            * kernel's quorum prune sets both (the dispatcher
	                            * also drops marked frames from the wire)        */
	int fast_reply;            /* followers: the kernel acknowledges Prepares      */
	int recover;               /* started without state: recover (VR Revisited
	                            * 4.3) before taking part in anything; 0 = start
	                            * normal in view 0 (unit tests, simulation)      */
	uint64_t keep_ops;         /* ops kept behind the low-water mark (0 = VC_EXTRA_OPS) */
};

/* What the eBPF side must know, published after every change. */
struct vr_public {
	uint64_t view;
	uint32_t status;           /* enum el_status                                */
	uint32_t leader;
	uint64_t last_op, commit;
};

struct vr_env {
	void *ctx;
	void (*send)(void *ctx, uint32_t replica, const void *buf, size_t len);
	void (*send_client)(void *ctx, const struct sockaddr_in *to, const void *buf, size_t len);
	/* The eBPF side. Every hook may be NULL (no fast paths). */
	void (*publish)(void *ctx, const struct vr_public *p);
	/* Close the fast reply's gate (status view change for `view`), wait
	 * until no program can still acknowledge, and hand every record in the
	 * ring back through vr_kernel_record() before returning. Called before
	 * every step that leaves the current view's normal status. */
	void (*quiesce)(void *ctx, uint64_t view);
	/* el_fr_state = {view, last_op}, while the gate is still closed. */
	void (*arm_reply)(void *ctx, uint64_t view, uint64_t last_op);
	/* Ops that came up the slow path: the kernel may go on from last_op. */
	void (*reply_progress)(void *ctx, uint64_t last_op);
	/* el_config.enabled, read live (EL_FP_*). */
	uint32_t (*enabled)(void *ctx);
	/* el_config.quorum_token, read live: a PrepareOK marked EL_F_QUORUM
	 * proves a quorum only when its request_id equals it (0 / NULL: no
	 * quorum prune loaded, no mark is trusted). */
	uint64_t (*quorum_token)(void *ctx);
	/* Every op as it commits, in op order (NULL: nobody listens). The log
	 * forgets old ops; this is where a full history can be kept. */
	void (*committed)(void *ctx, uint64_t opnum, const struct el_log_entry *e);
	/* The state after ops 1..op arrived in a snapshot: committed() resumes
	 * at op + 1 (NULL: nobody listens). */
	void (*installed)(void *ctx, uint64_t op);
};

/* A recovery in progress (VR Revisited 4.3). */
struct vr_recovery {
	uint64_t nonce;            /* fresh per round: answers to older rounds don't count */
	uint64_t since, round_started, last_ask, last_warn;
	uint8_t *answer;           /* per replica: EL_RR_* bits | VR_RA_HEARD, this round */
	uint64_t *aview, *alast;   /* per replica: the view and last op it answered     */
	int fetching;              /* the latest view's leader answered: its snapshot   */
	uint32_t from;
	uint64_t view, target;     /* its view and last op when it answered             */
};
#define VR_RA_HEARD 0x80

/* A snapshot on its way to this replica. */
struct vr_snap_in {
	int active;
	uint32_t from;
	uint64_t op, total, sum;
	uint64_t burst_end;        /* the burst asked for ends here                     */
	uint64_t last_progress, last_ask, started;
	uint8_t *buf;
	size_t len;
};

/* The snapshot this replica serves (one at a time, rebuilt when stale). */
struct vr_snap_out {
	uint8_t *buf;
	size_t len;
	uint64_t op, sum, made, used;
};

struct vr_dvc {
	uint8_t *buf;              /* raw datagram (owned)                          */
	size_t len;
	struct el_msg m;           /* decoded, points into buf                      */
};

struct vr_pending {
	uint64_t client_id, request_id;
	uint16_t len;
	uint8_t data[EL_MAX_OP_LEN];
};

struct vr_stats {
	uint64_t malformed, own_index, fr_records, fr_late, fr_gap, quorum_marks, forged_marks, behind_log, expired, expired_requests, pending_full,
		window_full, executed, recoveries, recovery_rounds, snap_chunks_sent, snaps_served, snaps_installed, snaps_refused,
		snap_bytes_in,
		acks_beyond_log,   /* PrepareOKs for ops the leader never logged: dropped   */
		sticky,            /* view changes not joined: our normal view's leader is alive */
		view_jumps,        /* view claims past what honest timeouts reach: dropped  */
		rejoins,           /* view changes abandoned for the normal view's leader    */
		not_leader;        /* Prepare, Commit, NewState or a snapshot chunk naming a
		                    * replica that is not the leader it must come from: dropped */
};

struct vr {
	struct vr_opts o;
	struct vr_env env;
	uint32_t me, n, f;

	uint64_t view, last_normal_view;
	uint32_t status;
	struct el_log log;
	uint64_t commit, executed;
	struct el_kv kv;
	struct el_ctable ct;       /* replicated: changed only by execution         */
	struct el_ctable addrs;    /* the leader's own: where each client sends from */
	struct el_quorum q;
	uint64_t *peer_commit;     /* leader: each follower's reported commit       */
	uint64_t *peer_heard;      /* leader: when each follower's last PrepareOK came */
	uint64_t lwm;              /* every replica has committed up to here        */

	/* view change */
	uint64_t *svc_view;        /* per replica: view of its latest SVC           */
	struct vr_dvc *dvc;        /* per replica: its DVC for our view              */
	int sent_dvc;
	uint64_t dvc_view_max;     /* highest view we sent a DoViewChange in: below it we never go back */
	uint64_t normal_since;     /* when we were last normal (bounds the views others may claim) */
	uint64_t *asked_since;     /* per replica: since when it asks for a later view we refuse */
	uint64_t *asked_last;      /* per replica: when it last asked                  */
	uint8_t *my_dvc;           /* what we sent, for retransmission               */
	size_t my_dvc_len;

	/* timers, microseconds of the environment's clock */
	uint64_t now, last_heard, vc_started, vc_timeout_cur, last_sent, last_retx, retx_commit,
		last_get_state, last_vc_resend, last_report;
	uint64_t get_state_at;     /* log.last when we last asked for state         */

	struct vr_pending *pend;
	size_t npend, pend_cap;

	/* fast-reply records that arrived ahead of a gap (never expected) */
	struct vr_dvc *held;
	size_t nheld;
	int in_quiesce;

	struct vr_public published;
	int published_valid;

	int ever_normal;           /* this process has been in normal status          */
	struct vr_recovery rec;
	struct vr_snap_in sin;
	struct vr_snap_out sout;
	uint32_t vc_fetch_from;    /* new leader: whom it asked for committed ops      */
	/* The leader of a cluster that just formed orders nothing until f
	 * followers are normal in it: replicas still recovering then find f+1
	 * normal replicas to recover from, never a minority that moved on. */
	uint8_t *confirmed;        /* per replica: a PrepareOK came in view 0        */
	int unconfirmed;

	uint64_t rng;
	struct vr_stats st;
	uint8_t sbuf[EL_MAX_DGRAM];
	uint8_t reply_buf[EL_MAX_REPLY];
};

/* Sets up a replica in view 0: normal, or (o->recover) recovering. */
void vr_init(struct vr *r, const struct vr_opts *o, const struct vr_env *env, uint32_t n, uint32_t f,
	     uint32_t me, uint64_t seed, uint64_t now);
void vr_free(struct vr *r);

/* A datagram from the socket (src: its sender). */
void vr_receive(struct vr *r, const void *buf, size_t len, const struct sockaddr_in *src, uint64_t now);
/* A Prepare the kernel's fast reply already acknowledged (ring record payload). */
void vr_kernel_record(struct vr *r, const void *buf, size_t len);
/* Timers: view change, retransmission, heartbeats, reports. */
void vr_tick(struct vr *r, uint64_t now);
/* Turns queued client requests into Prepares (after a batch of datagrams). */
void vr_flush(struct vr *r);

uint32_t vr_leader_of(const struct vr *r, uint64_t view);
/* "normal", "view change" or "recovering". */
const char *vr_status_name(uint32_t status);

#endif
