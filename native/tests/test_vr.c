/* SPDX-License-Identifier: MIT
 *
 * test_vr.c - the VR core (vr.h) stepped by hand: cores in one process, an
 * environment that records what each sends and what it tells the eBPF side,
 * and messages delivered by the test. One test per failure the safety review
 * found (issue 11), each of which failed before its fix, plus view change,
 * state transfer and the fast-path hand-offs. Run: make -C native test.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "config.h"
#include "util.h"
#include "vr.h"
#include "snapshot.h"

#define MAXN 7

/* ---- a recording environment ---------------------------------------- */

struct sent {
	uint32_t to;          /* replica index, or CLIENT */
	size_t len;
	uint8_t buf[EL_MAX_DGRAM];
};
#define CLIENT 0xffffu

struct node;
struct world {
	uint32_t n, f;
	struct node *nodes;
	uint64_t now;
};

struct node {
	struct world *w;
	uint32_t idx;
	struct vr core;
	struct sent *out;
	size_t nout, cap;
	/* the eBPF side as the core sees it */
	struct vr_public pub;
	int publishes;
	uint64_t fr_view, fr_last;
	uint32_t enabled;
	int gate_closed;          /* quiesce() since the last publish of normal */
	char calls[256];          /* order of fast-path hooks: A=arm P=publish(normal) Q=quiesce */
	size_t ncalls;
	/* the fast reply's ring: records the kernel acknowledged */
	uint8_t *ring[64];
	size_t ring_len[64], nring;
	uint64_t committed_last;  /* committed() must go 1, 2, 3... */
	int committed_bad;
	int installs;             /* snapshots installed */
};

static void rec_call(struct node *nd, char c)
{
	if (nd->ncalls < sizeof(nd->calls) - 1)
		nd->calls[nd->ncalls++] = c;
}

static void push_out(struct node *nd, uint32_t to, const void *buf, size_t len)
{
	if (nd->nout == nd->cap) {
		nd->cap = nd->cap ? nd->cap * 2 : 64;
		nd->out = el_xrealloc(nd->out, nd->cap * sizeof(*nd->out));
	}
	struct sent *s = &nd->out[nd->nout++];
	s->to = to;
	s->len = len;
	memcpy(s->buf, buf, len);
}

static void e_send(void *ctx, uint32_t to, const void *buf, size_t len) { push_out(ctx, to, buf, len); }
static void e_send_client(void *ctx, const struct sockaddr_in *to, const void *buf, size_t len)
{
	(void)to;
	push_out(ctx, CLIENT, buf, len);
}
static void e_publish(void *ctx, const struct vr_public *p)
{
	struct node *nd = ctx;
	nd->pub = *p;
	nd->publishes++;
	if (p->status == EL_STATUS_NORMAL)
		rec_call(nd, 'P');
}
static void e_quiesce(void *ctx, uint64_t view)
{
	struct node *nd = ctx;
	(void)view;
	rec_call(nd, 'Q');
	nd->gate_closed = 1;
	/* hand back everything the kernel acknowledged, as replica.c does */
	size_t k = nd->nring;
	nd->nring = 0;
	for (size_t i = 0; i < k; i++) {
		vr_kernel_record(&nd->core, nd->ring[i], nd->ring_len[i]);
		free(nd->ring[i]);
	}
}
static void e_arm(void *ctx, uint64_t view, uint64_t last)
{
	struct node *nd = ctx;
	rec_call(nd, 'A');
	nd->fr_view = view;
	nd->fr_last = last;
}
static void e_progress(void *ctx, uint64_t last)
{
	struct node *nd = ctx;
	if (last > nd->fr_last)
		nd->fr_last = last;
}
static uint32_t e_enabled(void *ctx) { return ((struct node *)ctx)->enabled; }
/* every node's kernel drew this quorum token at attach (el_config.quorum_token) */
#define TOKEN 0x5eed0fc0ffee1234ull
static uint64_t e_token(void *ctx) { (void)ctx; return TOKEN; }
static void e_committed(void *ctx, uint64_t opnum, const struct el_log_entry *e)
{
	struct node *nd = ctx;
	if (!e || opnum != nd->committed_last + 1)
		nd->committed_bad++;
	nd->committed_last = opnum;
}
/* a snapshot brought ops 1..op: committed() goes on from op + 1 */
static void e_installed(void *ctx, uint64_t op)
{
	struct node *nd = ctx;
	nd->committed_last = op;
	nd->installs++;
}

static struct vr_env node_env(struct node *nd)
{
	struct vr_env env = { .ctx = nd, .send = e_send, .send_client = e_send_client, .publish = e_publish,
			      .quiesce = e_quiesce, .arm_reply = e_arm, .reply_progress = e_progress,
			      .enabled = e_enabled, .quorum_token = e_token, .committed = e_committed,
			      .installed = e_installed };
	return env;
}

static struct vr_opts opts_default(void)
{
	struct vr_opts o = { .batch = 1, .heartbeat_us = 50000, .vc_timeout_us = 400000, .retransmit_us = 20000,
			     .max_prepare = 1472 };
	return o;
}

static void world_init(struct world *w, uint32_t n, const struct vr_opts *o)
{
	memset(w, 0, sizeof(*w));
	w->n = n;
	w->f = (n - 1) / 2;
	w->now = 1000000;
	w->nodes = el_xcalloc(n, sizeof(*w->nodes));
	for (uint32_t i = 0; i < n; i++) {
		struct node *nd = &w->nodes[i];
		nd->w = w;
		nd->idx = i;
		nd->enabled = EL_FP_BROADCAST | EL_FP_QUORUM | EL_FP_REPLY;
		struct vr_env env = node_env(nd);
		vr_init(&nd->core, o, &env, n, w->f, i, 1234 + i, w->now);
	}
}

static void world_free(struct world *w)
{
	for (uint32_t i = 0; i < w->n; i++) {
		vr_free(&w->nodes[i].core);
		free(w->nodes[i].out);
		for (size_t k = 0; k < w->nodes[i].nring; k++)
			free(w->nodes[i].ring[k]);
	}
	free(w->nodes);
}

static struct sockaddr_in client_addr(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(40000) };
	a.sin_addr.s_addr = htonl(0x7f000001);
	return a;
}

/* Delivers everything queued, in order, until nothing moves (or `only` filters). */
static int deliver_all(struct world *w, int (*drop)(const struct node *from, const struct sent *s))
{
	int moved = 0;
	for (int round = 0; round < 10000; round++) {
		int any = 0;
		for (uint32_t i = 0; i < w->n; i++) {
			struct node *nd = &w->nodes[i];
			while (nd->nout) {
				struct sent s;
				memcpy(&s, &nd->out[0], sizeof(s));
				memmove(nd->out, nd->out + 1, (nd->nout - 1) * sizeof(*nd->out));
				nd->nout--;
				if (s.to == CLIENT || (drop && drop(nd, &s)))
					continue;
				struct sockaddr_in src = client_addr();
				vr_receive(&w->nodes[s.to].core, s.buf, s.len, &src, w->now);
				any = 1;
				moved++;
			}
		}
		for (uint32_t i = 0; i < w->n; i++)
			vr_flush(&w->nodes[i].core);
		if (!any)
			break;
	}
	return moved;
}

static size_t request(uint8_t *buf, uint64_t cid, uint64_t rid, const char *key, const char *val)
{
	uint8_t op[EL_MAX_OP_LEN];
	size_t n = el_op_encode(op, sizeof(op), val ? EL_OP_PUT : EL_OP_GET, key, strlen(key), val, val ? strlen(val) : 0);
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = EL_MSG_REQUEST;
	h.replica = EL_NO_REPLICA;
	h.client_id = cid;
	h.request_id = rid;
	struct el_builder b;
	el_build_start(&b, buf, EL_MAX_DGRAM, &h);
	el_build_bytes(&b, op, n);
	return el_build_finish(&b);
}

static void submit(struct world *w, uint32_t at, uint64_t cid, uint64_t rid, const char *val)
{
	uint8_t buf[EL_MAX_DGRAM];
	struct sockaddr_in src = client_addr();
	size_t len = request(buf, cid, rid, "k", val);
	vr_receive(&w->nodes[at].core, buf, len, &src, w->now);
	vr_flush(&w->nodes[at].core);
}

static size_t hdr_only(uint8_t *buf, uint8_t type, uint32_t from, uint64_t view, uint64_t opnum, uint64_t commit, uint8_t flags)
{
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.replica = (uint8_t)from;
	h.view = view;
	h.opnum = opnum;
	h.commit = commit;
	h.flags = flags;
	struct el_builder b;
	el_build_start(&b, buf, EL_MAX_DGRAM, &h);
	return el_build_finish(&b);
}

static void feed(struct world *w, uint32_t to, const uint8_t *buf, size_t len)
{
	struct sockaddr_in src = client_addr();
	vr_receive(&w->nodes[to].core, buf, len, &src, w->now);
}

static const struct sent *last_of_type(const struct node *nd, uint8_t type)
{
	for (size_t i = nd->nout; i-- > 0;)
		if (nd->out[i].buf[5] == type)
			return &nd->out[i];
	return NULL;
}

static void clear_out(struct world *w)
{
	for (uint32_t i = 0; i < w->n; i++)
		w->nodes[i].nout = 0;
}

/* ---- 1. quorum prune: only the kernel's mark stands for a quorum ------- */

static void test_quorum_mark(void)
{
	struct vr_opts o = opts_default();
	o.kernel_quorum = 1;
	struct world w;
	world_init(&w, 5, &o);
	struct vr *leader = &w.nodes[0].core;
	submit(&w, 0, 7, 1, "a");
	CHECK_EQ(leader->log.last, 1);
	uint8_t buf[256];
	/* an UNMARKED PrepareOK passed up by a kernel that did not count it
	 * (slot reused, arm switched off, fragment...): one follower's ack only */
	size_t len = hdr_only(buf, EL_MSG_PREPARE_OK, 1, 0, 1, 0, 0);
	feed(&w, 0, buf, len);
	CHECK_EQ(leader->commit, 0); /* f = 2: one ack is not a quorum (this committed before the fix) */
	len = hdr_only(buf, EL_MSG_PREPARE_OK, 2, 0, 1, 0, 0);
	feed(&w, 0, buf, len);
	CHECK_EQ(leader->commit, 1);
	/* a mark WITHOUT the kernel's token (IP options or fragments took it past
	 * the dispatcher; a reassembled datagram can say anything): one ack only */
	submit(&w, 0, 7, 2, "b");
	len = hdr_only(buf, EL_MSG_PREPARE_OK, 3, 0, 2, 0, EL_F_QUORUM);
	feed(&w, 0, buf, len);
	CHECK_EQ(leader->commit, 1); /* this committed before the token */
	CHECK_EQ(leader->st.forged_marks, 1);
	uint64_t wrong = TOKEN ^ 1;
	memcpy(buf + 40, &wrong, 8);
	feed(&w, 0, buf, len);
	CHECK_EQ(leader->commit, 1);
	CHECK_EQ(leader->st.forged_marks, 2);
	/* the MARK with the token: the kernel counted f distinct acks */
	uint64_t token = TOKEN;
	len = hdr_only(buf, EL_MSG_PREPARE_OK, 4, 0, 2, 0, EL_F_QUORUM);
	memcpy(buf + 40, &token, 8);
	feed(&w, 0, buf, len);
	CHECK_EQ(leader->commit, 2);
	CHECK_EQ(leader->st.quorum_marks, 1);
	/* a mark for an op we do not have commits nothing */
	len = hdr_only(buf, EL_MSG_PREPARE_OK, 3, 0, 99, 0, EL_F_QUORUM);
	memcpy(buf + 40, &token, 8);
	feed(&w, 0, buf, len);
	CHECK_EQ(leader->commit, 2);
	world_free(&w);

	/* without the kernel's quorum prune attached, a mark is not trusted */
	o.kernel_quorum = 0;
	world_init(&w, 5, &o);
	submit(&w, 0, 7, 1, "a");
	len = hdr_only(buf, EL_MSG_PREPARE_OK, 1, 0, 1, 0, EL_F_QUORUM);
	uint64_t t2 = TOKEN;
	memcpy(buf + 40, &t2, 8);
	feed(&w, 0, buf, len);
	CHECK_EQ(w.nodes[0].core.commit, 0);
	world_free(&w);
}

/* ---- 2. fast reply across a view change -------------------------------- */

/* The kernel of follower `nd` acknowledges a Prepare: the record goes to its
 * ring (not yet drained) and a PrepareOK to the leader. */
static void kernel_ack(struct world *w, struct node *nd, const struct sent *prep)
{
	uint8_t *copy = el_xmalloc(prep->len);
	memcpy(copy, prep->buf, prep->len);
	nd->ring[nd->nring] = copy;
	nd->ring_len[nd->nring++] = prep->len;
	uint64_t opnum, view;
	memcpy(&view, prep->buf + 8, 8);
	memcpy(&opnum, prep->buf + 16, 8);
	uint8_t buf[256];
	size_t len = hdr_only(buf, EL_MSG_PREPARE_OK, nd->idx, view, opnum, 0, EL_F_FROM_XDP);
	feed(w, 0, buf, len);
}

static void test_fast_reply_view_change(void)
{
	struct vr_opts o = opts_default();
	o.fast_reply = 1;
	struct world w;
	world_init(&w, 3, &o);
	struct node *leader = &w.nodes[0], *f1 = &w.nodes[1], *f2 = &w.nodes[2];
	submit(&w, 0, 7, 1, "acked");
	const struct sent *prep = last_of_type(leader, EL_MSG_PREPARE);
	CHECK(prep != NULL);
	/* f1's kernel acknowledges op 1; the leader commits it on that ack (f = 1)
	 * and replies to the client; f1's user space has not drained its ring */
	kernel_ack(&w, f1, prep);
	CHECK_EQ(leader->core.commit, 1);
	CHECK(last_of_type(leader, EL_MSG_REPLY) != NULL);
	CHECK_EQ(f1->core.log.last, 0);
	/* the leader dies; f2 never got op 1; f2 starts a view change (to view 2,
	 * which f2 leads) and f1 handles the StartViewChange BEFORE its ring: its
	 * DoViewChange must still hold op 1 */
	clear_out(&w);
	w.now += o.vc_timeout_us; /* f1 has not heard its leader since */
	uint8_t buf[256];
	size_t len = hdr_only(buf, EL_MSG_START_VIEW_CHANGE, 2, 2, 0, 0, 0);
	feed(&w, 1, buf, len);
	CHECK(strchr(f1->calls, 'Q') != NULL); /* the gate closed and the ring drained first */
	const struct sent *dvc = last_of_type(f1, EL_MSG_DO_VIEW_CHANGE);
	CHECK(dvc != NULL);
	if (dvc) {
		uint64_t opnum;
		memcpy(&opnum, dvc->buf + 16, 8);
		CHECK_EQ(opnum, 1); /* before the fix: 0, and op 1 was lost in view 2 */
	}
	/* finish the view change between f1 and f2 */
	for (int i = 0; i < 4; i++) {
		/* deliver between the survivors only */
		for (uint32_t k = 1; k < 3; k++) {
			struct node *nd = &w.nodes[k];
			size_t cnt = nd->nout;
			for (size_t m = 0; m < cnt; m++) {
				struct sent *s = &nd->out[m];
				if (s->to == 1 || s->to == 2)
					feed(&w, s->to, s->buf, s->len);
			}
			memmove(nd->out, nd->out + cnt, (nd->nout - cnt) * sizeof(*nd->out));
			nd->nout -= cnt;
		}
		if (f2->core.status == EL_STATUS_VIEW_CHANGE) {
			/* f2 started its own view change when it sent the SVC */
		}
	}
	CHECK_EQ(f2->core.view, 2);
	CHECK_EQ(f2->core.status, EL_STATUS_NORMAL);
	CHECK_EQ(f2->core.log.last, 1); /* op 1 survived into view 2 */
	CHECK_EQ(f1->core.status, EL_STATUS_NORMAL);
	CHECK_EQ(f1->core.st.fr_late, 0);
	/* entering view 2, el_fr_state was armed before the gate opened */
	const char *a = strrchr(f1->calls, 'A'), *p = strrchr(f1->calls, 'P');
	CHECK(a && p && a < p);
	CHECK_EQ(f1->fr_view, 2);
	world_free(&w);
}

/* A record that arrives for a view we already left is counted, never applied. */
static void test_fast_reply_late_record(void)
{
	struct vr_opts o = opts_default();
	o.fast_reply = 1;
	struct world w;
	world_init(&w, 3, &o);
	submit(&w, 0, 7, 1, "x");
	const struct sent *prep = last_of_type(&w.nodes[0], EL_MSG_PREPARE);
	uint8_t copy[EL_MAX_DGRAM];
	size_t len = prep->len;
	memcpy(copy, prep->buf, len);
	uint8_t buf[256];
	w.now += o.vc_timeout_us; /* the leader went quiet */
	size_t l = hdr_only(buf, EL_MSG_START_VIEW_CHANGE, 2, 1, 0, 0, 0);
	feed(&w, 1, buf, l);
	vr_kernel_record(&w.nodes[1].core, copy, len);
	CHECK_EQ(w.nodes[1].core.st.fr_late, 1);
	CHECK_EQ(w.nodes[1].core.log.last, 0);
	world_free(&w);
}

/* ---- 3. one datagram must not abort a replica ---------------------------- */

static void test_hostile_views(void)
{
	struct vr_opts o = opts_default();
	struct world w;
	world_init(&w, 3, &o);
	uint8_t buf[256];
	/* view 2^64-1: the next view would wrap to 0 (an assertion aborted every replica) */
	size_t len = hdr_only(buf, EL_MSG_START_VIEW_CHANGE, 2, UINT64_MAX, 0, 0, 0);
	feed(&w, 1, buf, len);
	CHECK_EQ(w.nodes[1].core.view, 0);
	CHECK(w.nodes[1].core.st.malformed >= 1);
	/* a well-formed view below the limit: while its leader is alive the
	 * follower stays in its view (pre-vote: it was not cut off) */
	len = hdr_only(buf, EL_MSG_START_VIEW_CHANGE, 2, EL_VIEW_LIMIT - 1, 0, 0, 0);
	feed(&w, 1, buf, len);
	CHECK_EQ(w.nodes[1].core.view, 0);
	CHECK_EQ(w.nodes[1].core.status, EL_STATUS_NORMAL);
	CHECK_EQ(w.nodes[1].core.st.sticky, 1);
	/* with the leader silent it would change views, but not to a view no
	 * timeout could reach: one datagram used to move it to the last legal
	 * view, and the next leader failure was permanent */
	w.now += o.vc_timeout_us;
	feed(&w, 1, buf, len);
	CHECK_EQ(w.nodes[1].core.view, 0);
	CHECK_EQ(w.nodes[1].core.st.view_jumps, 1);
	len = hdr_only(buf, EL_MSG_DO_VIEW_CHANGE, 2, EL_VIEW_LIMIT - 1, 0, 0, 0);
	feed(&w, 1, buf, len);
	CHECK_EQ(w.nodes[1].core.view, 0);
	/* a near view is joined */
	len = hdr_only(buf, EL_MSG_START_VIEW_CHANGE, 2, 2, 0, 0, 0);
	feed(&w, 1, buf, len);
	CHECK_EQ(w.nodes[1].core.view, 2);
	CHECK_EQ(w.nodes[1].core.status, EL_STATUS_VIEW_CHANGE);
	/* a GetState "from" the receiver's own index (tripped idx != me) */
	len = hdr_only(buf, EL_MSG_GET_STATE, 0, 0, 0, 0, 0);
	feed(&w, 0, buf, len);
	CHECK_EQ(w.nodes[0].core.st.own_index, 1);
	/* every message type from our own index is dropped the same way */
	for (uint8_t t = EL_MSG_PREPARE; t <= EL_MSG_NEW_STATE; t++) {
		if (t == EL_MSG_PREPARE || t == EL_MSG_DO_VIEW_CHANGE || t == EL_MSG_START_VIEW || t == EL_MSG_NEW_STATE)
			continue; /* these need entries to decode */
		len = hdr_only(buf, t, 0, 0, 0, 0, 0);
		feed(&w, 0, buf, len);
	}
	CHECK(w.nodes[0].core.st.own_index >= 4);
	world_free(&w);
}

static void commit_n(struct world *w, uint32_t leader, uint64_t cid, uint64_t from, uint64_t to);
static void run_for(struct world *w, uint64_t us);
static uint32_t down_mask;
static int drop_down(const struct node *from, const struct sent *s);

/* The lie from issue 21: followers stopped, a forged PrepareOK for op
 * 2^64-1 "from" a follower made the leader commit (and acknowledge) ops no
 * follower held. */
static void test_ack_beyond_log_dropped(void)
{
	struct vr_opts o = opts_default();
	struct world w;
	world_init(&w, 3, &o);
	down_mask = (1u << 1) | (1u << 2);
	for (uint64_t i = 1; i <= 5; i++) {
		submit(&w, 0, 9, i, "w");
		deliver_all(&w, drop_down);
	}
	struct vr *l = &w.nodes[0].core;
	CHECK_EQ(l->log.last, 5);
	clear_out(&w);
	uint8_t buf[256];
	size_t len = hdr_only(buf, EL_MSG_PREPARE_OK, 1, 0, UINT64_MAX, 0, 0);
	feed(&w, 0, buf, len);
	CHECK_EQ(l->commit, 0);
	CHECK_EQ(l->st.acks_beyond_log, 1);
	CHECK(last_of_type(&w.nodes[0], EL_MSG_REPLY) == NULL);
	/* a true ack still commits */
	len = hdr_only(buf, EL_MSG_PREPARE_OK, 1, 0, 5, 0, 0);
	feed(&w, 0, buf, len);
	CHECK_EQ(l->commit, 5);
	down_mask = 0;
	world_free(&w);
}

/* What only the leader sends, sent by another replica (a forged source the
 * address check let through, the forge nemesis): a follower takes none of
 * it and counts each. */
static void test_leader_only_messages_from_another_replica(void)
{
	struct vr_opts o = opts_default();
	struct world w;
	world_init(&w, 3, &o);
	for (uint64_t i = 1; i <= 3; i++) {
		submit(&w, 0, 9, i, "w");
		deliver_all(&w, NULL);
	}
	struct vr *f1 = &w.nodes[1].core;
	uint64_t last = f1->log.last, commit = f1->commit;
	CHECK_EQ(last, 3);
	uint8_t buf[256];
	/* a Commit "from" replica 2, far ahead */
	feed(&w, 1, buf, hdr_only(buf, EL_MSG_COMMIT, 2, 0, 3, 1000, 0));
	/* a NewState of the log "from" replica 2, with an op beyond ours */
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = EL_MSG_NEW_STATE;
	h.replica = 2;
	h.opnum = last + 1;
	h.request_id = EL_STATE_LOG;
	struct el_builder b;
	uint8_t op[32];
	size_t oplen = el_op_encode(op, sizeof(op), EL_OP_PUT, "k", 1, "forged", 6);
	el_build_start(&b, buf, sizeof(buf), &h);
	el_build_entry(&b, 9, 77, op, (uint16_t)oplen);
	el_build_set_aux(&b, 1);
	feed(&w, 1, buf, el_build_finish(&b));
	/* a one-chunk snapshot "from" replica 2 nobody asked for */
	uint8_t chunk[32] = { 1, 2, 3 };
	memset(&h, 0, sizeof(h));
	h.type = EL_MSG_SNAPSHOT_CHUNK;
	h.replica = 2;
	h.opnum = 1000;
	h.client_id = sizeof(chunk);
	h.request_id = el_snap_sum(chunk, sizeof(chunk));
	el_build_start(&b, buf, sizeof(buf), &h);
	el_build_bytes(&b, chunk, sizeof(chunk));
	feed(&w, 1, buf, el_build_finish(&b));
	CHECK_EQ(f1->log.last, last);
	CHECK_EQ(f1->commit, commit);
	CHECK_EQ(f1->st.malformed, 0);
	CHECK_EQ(f1->st.not_leader, 3);
	CHECK_EQ(f1->st.snaps_installed, 0);
	world_free(&w);
}

/* A follower cut off for a while times out, climbs views on its own, and
 * comes back: the healthy cluster stays in its view (it used to change
 * views, about 1 s without a leader) and the follower rejoins it. */
static void test_cut_off_follower_rejoins_without_view_change(void)
{
	struct vr_opts o = opts_default();
	struct world w;
	world_init(&w, 3, &o);
	down_mask = 0;
	commit_n(&w, 0, 5, 1, 20);
	/* replica 2 cut off (its traffic dropped) but running: it keeps ticking */
	down_mask = 1u << 2;
	for (uint64_t t = 0; t < 3000000; t += 5000) {
		w.now += 5000;
		for (uint32_t k = 0; k < w.n; k++)
			vr_tick(&w.nodes[k].core, w.now);
		deliver_all(&w, drop_down);
	}
	down_mask = 0;
	struct vr *r2 = &w.nodes[2].core;
	CHECK(r2->view >= 2);
	CHECK_EQ(r2->status, EL_STATUS_VIEW_CHANGE);
	CHECK_EQ(w.nodes[0].core.view, 0);
	run_for(&w, 500000);
	CHECK_EQ(w.nodes[0].core.view, 0);
	CHECK_EQ(w.nodes[0].core.status, EL_STATUS_NORMAL);
	CHECK_EQ(w.nodes[1].core.view, 0);
	CHECK(w.nodes[0].core.st.sticky + w.nodes[1].core.st.sticky >= 1);
	CHECK_EQ(r2->status, EL_STATUS_NORMAL);
	CHECK_EQ(r2->view, 0);
	CHECK_EQ(r2->st.rejoins, 1);
	commit_n(&w, 0, 5, 21, 30);
	run_for(&w, 100000);
	CHECK_EQ(r2->commit, 30);
	CHECK_EQ(el_kv_digest(&r2->kv), el_kv_digest(&w.nodes[0].core.kv));
	world_free(&w);
}

/* ---- 5. a DoViewChange always fits -------------------------------------- */

static int drop_all(const struct node *from, const struct sent *s)
{
	(void)from;
	(void)s;
	return 1;
}

static void test_window_keeps_dvc_in_one_datagram(void)
{
	struct vr_opts o = opts_default();
	o.batch = 64;
	o.max_prepare = EL_MAX_DGRAM;
	struct world w;
	world_init(&w, 3, &o);
	/* followers never ack: 5000 small requests reach the leader */
	char val[32];
	for (uint64_t i = 1; i <= 5000; i++) {
		snprintf(val, sizeof(val), "v%llu", (unsigned long long)i);
		submit(&w, 0, 1000 + i, 1, val);
		deliver_all(&w, drop_all);
	}
	struct vr *l = &w.nodes[0].core;
	CHECK(l->log.last > 300);  /* the window takes many ops... */
	CHECK(l->log.last < 5000); /* ...but not all of them (before the fix: all 5000) */
	CHECK(l->st.window_full > 0);
	CHECK(el_log_wire_bytes(&l->log, l->commit + 1, l->log.last) <= VR_DEFAULT_WINDOW);
	/* a view change now: the old leader's DoViewChange must go out */
	clear_out(&w);
	w.now += o.vc_timeout_us; /* no follower heard from since */
	uint8_t buf[256];
	size_t len = hdr_only(buf, EL_MSG_START_VIEW_CHANGE, 1, 1, 0, 0, 0);
	feed(&w, 0, buf, len);
	const struct sent *dvc = last_of_type(&w.nodes[0], EL_MSG_DO_VIEW_CHANGE);
	CHECK(dvc != NULL);
	if (dvc) {
		uint64_t opnum;
		memcpy(&opnum, dvc->buf + 16, 8);
		CHECK_EQ(opnum, l->log.last);
	}
	world_free(&w);
}

/* With the kernel's quorum prune the window is bounded by the quorum slots:
 * 1,024 slots and about 1,300 small ops in the byte window let a later op
 * re-arm the slot of an uncommitted one and drop its counted acks. */
static void test_window_bounded_by_quorum_slots(void)
{
	struct vr_opts o = opts_default();
	o.batch = 64;
	o.max_prepare = EL_MAX_DGRAM;
	o.window_ops = EL_QSLOTS - 1;
	struct world w;
	world_init(&w, 3, &o);
	char val[32];
	for (uint64_t i = 1; i <= 3000; i++) {
		snprintf(val, sizeof(val), "%llu", (unsigned long long)i);
		submit(&w, 0, 1000 + i, 1, val);
		deliver_all(&w, drop_all);
	}
	struct vr *l = &w.nodes[0].core;
	/* exactly at the limit: every uncommitted op has a slot of its own */
	CHECK_EQ(l->log.last - l->commit, EL_QSLOTS - 1);
	CHECK(l->st.window_full > 0);
	/* the byte window alone would have taken more (the bug) */
	CHECK(el_log_wire_bytes(&l->log, l->commit + 1, l->log.last) < VR_DEFAULT_WINDOW);
	world_free(&w);
}

/* ---- 6. memory stays bounded -------------------------------------------- */

static void test_memory_bounded(void)
{
	struct vr_opts o = opts_default();
	o.max_clients = 16;
	struct world w;
	world_init(&w, 3, &o);
	char val[32];
	/* 8 steady clients and 2,000 one-shot ones, 20,000 ops, every message delivered */
	uint64_t next_rid[9] = { 0 };
	for (uint64_t i = 1; i <= 20000; i++) {
		snprintf(val, sizeof(val), "%llu", (unsigned long long)i);
		if (i % 10 == 0)
			submit(&w, 0, 1000 + i / 10, 1, val);
		else
			submit(&w, 0, 1 + i % 8, ++next_rid[1 + i % 8], val);
		deliver_all(&w, NULL);
		if (i % 500 == 0) {
			/* followers report where they are (ticks), so the leader learns its low-water mark */
			w.now += 60000;
			for (uint32_t k = 0; k < 3; k++)
				vr_tick(&w.nodes[k].core, w.now);
			deliver_all(&w, NULL);
		}
	}
	for (uint32_t k = 0; k < 3; k++) {
		struct vr *r = &w.nodes[k].core;
		CHECK_EQ(r->commit, 20000);
		CHECK(r->log.last - r->log.first + 1 < 2000); /* before the fix: 20000 entries held */
		CHECK(r->ct.used <= 16);
		CHECK(r->ct.evicted > 0);
		CHECK_EQ(w.nodes[k].committed_bad, 0);
	}
	/* eviction follows execution order: every replica forgot the same clients */
	for (uint64_t cid = 1; cid <= 3000; cid++) {
		int had = el_ctable_find(&w.nodes[0].core.ct, cid) != NULL;
		for (uint32_t k = 1; k < 3; k++)
			CHECK_EQ(el_ctable_find(&w.nodes[k].core.ct, cid) != NULL, had);
	}
	/* the steady clients were never evicted: their duplicates are still caught */
	for (uint64_t cid = 1; cid <= 8; cid++)
		CHECK(el_ctable_find(&w.nodes[0].core.ct, cid) != NULL);
	const struct el_kv_slot *s = el_kv_find(&w.nodes[1].core.kv, "k", 1);
	CHECK(s && s->vlen == 5 && memcmp(s->val, "20000", 5) == 0);
	/* an evicted client's next request (its session is gone) is refused, not
	 * executed: executing it could apply a retry twice (before the fix: it did) */
	CHECK(el_ctable_find(&w.nodes[0].core.ct, 1010) == NULL);
	uint64_t before = w.nodes[0].core.commit;
	submit(&w, 0, 1010, 2, "again");
	deliver_all(&w, NULL);
	CHECK_EQ(w.nodes[0].core.commit, before);
	CHECK_EQ(w.nodes[0].core.st.expired_requests, 1);
	CHECK(el_ctable_find(&w.nodes[0].core.ct, 1010) == NULL);
	world_free(&w);
}

/* ---- 6b. a silent replica does not pin the log --------------------------- */

static int drop_to_2(const struct node *from, const struct sent *s)
{
	(void)from;
	return s->to == 2;
}

static void test_silent_replica_lwm(void)
{
	struct vr_opts o = opts_default();
	o.lwm_grace_us = 2000000;
	struct world w;
	world_init(&w, 3, &o);
	char val[32];
	struct vr *leader = &w.nodes[0].core;
	/* replica 2 hears nothing from op 1 on (dead to the others) */
	for (uint64_t i = 1; i <= 6000; i++) {
		snprintf(val, sizeof(val), "%llu", (unsigned long long)i);
		submit(&w, 0, 7, i, val);
		deliver_all(&w, drop_to_2);
		if (i % 500 == 0) {
			w.now += 60000;
			for (uint32_t k = 0; k < 2; k++)
				vr_tick(&w.nodes[k].core, w.now);
			deliver_all(&w, drop_to_2);
		}
	}
	CHECK_EQ(leader->commit, 6000);
	/* 12 x 60 ms = 720 ms of silence: within the grace, the log is kept for it */
	CHECK_EQ(leader->log.first, 1);
	/* past the grace (2 s), replica 2 no longer holds the log back */
	for (int t = 0; t < 40; t++) {
		w.now += 60000;
		for (uint32_t k = 0; k < 2; k++)
			vr_tick(&w.nodes[k].core, w.now);
		deliver_all(&w, drop_to_2);
	}
	submit(&w, 0, 7, 6001, "x");
	deliver_all(&w, drop_to_2);
	w.now += 60000;
	for (uint32_t k = 0; k < 2; k++)
		vr_tick(&w.nodes[k].core, w.now);
	deliver_all(&w, drop_to_2);
	CHECK(leader->log.first > 5000); /* before the fix: op 1 forever */
	CHECK(leader->log.last - leader->log.first + 1 < 1000);
	world_free(&w);
}

/* ---- 7. Prepares and the MTU -------------------------------------------- */

/* the Prepares a node sent since nout was reset, and how many carry the broadcast mark */
static void count_prepares(const struct node *l, size_t *preps, size_t *marked)
{
	*preps = *marked = 0;
	for (size_t i = 0; i < l->nout; i++) {
		if (l->out[i].buf[5] != EL_MSG_PREPARE)
			continue;
		(*preps)++;
		*marked += (l->out[i].buf[6] & EL_F_BCAST) != 0;
	}
}

static void test_prepare_size_and_broadcast(void)
{
	struct vr_opts o = opts_default();
	o.fast_broadcast = 1;
	o.batch = 8;
	struct world w;
	world_init(&w, 3, &o);
	struct node *l = &w.nodes[0];
	/* one op larger than the MTU's payload still goes, unmarked, to each follower */
	char big[1001];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	o.max_prepare = 600;
	vr_free(&l->core);
	struct vr_env env = { .ctx = l, .send = e_send, .send_client = e_send_client, .publish = e_publish,
			      .quiesce = e_quiesce, .arm_reply = e_arm, .reply_progress = e_progress,
			      .enabled = e_enabled, .quorum_token = e_token, .committed = e_committed };
	vr_init(&l->core, &o, &env, 3, 1, 0, 1, w.now);
	l->nout = 0;
	submit(&w, 0, 9, 1, big);
	size_t preps, marked;
	count_prepares(l, &preps, &marked);
	CHECK_EQ(preps, 2);  /* to each follower */
	CHECK_EQ(marked, 0); /* TC cannot fan out fragments */
	/* small ops: marked, one copy */
	l->nout = 0;
	submit(&w, 0, 9, 2, "small");
	count_prepares(l, &preps, &marked);
	CHECK_EQ(preps, 1);
	CHECK_EQ(marked, 1);
	/* the broadcast switched off at run time: the leader looks before it marks */
	l->enabled = EL_FP_QUORUM;
	l->nout = 0;
	submit(&w, 0, 9, 3, "again");
	count_prepares(l, &preps, &marked);
	CHECK_EQ(preps, 2);
	CHECK_EQ(marked, 0);
	/* a batch never exceeds max_prepare: 8 small ops split across Prepares of <= 600 bytes */
	l->nout = 0;
	uint8_t buf[EL_MAX_DGRAM];
	struct sockaddr_in src = client_addr();
	for (uint64_t i = 0; i < 8; i++) {
		char v[96];
		snprintf(v, sizeof(v), "value-number-%llu-with-some-bytes-to-fill-the-prepare-up-to-its-cap", (unsigned long long)i);
		size_t len = request(buf, 100 + i, 1, "key", v);
		vr_receive(&l->core, buf, len, &src, w.now);
	}
	vr_flush(&l->core);
	size_t ops = 0;
	preps = 0;
	for (size_t i = 0; i < l->nout; i++) {
		if (l->out[i].buf[5] != EL_MSG_PREPARE || l->out[i].to != 1)
			continue;
		preps++;
		CHECK(l->out[i].len <= 600);
		uint32_t aux;
		memcpy(&aux, l->out[i].buf + 52, 4);
		ops += aux;
	}
	CHECK_EQ(ops, 8);
	CHECK(preps >= 2);
	world_free(&w);
}

/* ---- view change and state transfer, all delivered -------------------- */

static int drop_from0(const struct node *from, const struct sent *s)
{
	return from->idx == 0 || s->to == 0;
}

static void test_view_change_and_state_transfer(void)
{
	struct vr_opts o = opts_default();
	struct world w;
	world_init(&w, 5, &o);
	for (uint64_t i = 1; i <= 30; i++) {
		submit(&w, 0, 5, i, "v");
		deliver_all(&w, NULL);
	}
	CHECK_EQ(w.nodes[0].core.commit, 30);
	/* replica 4 misses ops 31..40 */
	for (uint64_t i = 31; i <= 40; i++) {
		submit(&w, 0, 5, i, "w");
		for (uint32_t k = 0; k < w.n; k++) {
			struct node *nd = &w.nodes[k];
			size_t keep = 0;
			for (size_t m = 0; m < nd->nout; m++)
				if (nd->out[m].to != 4)
					nd->out[keep++] = nd->out[m];
			nd->nout = keep;
		}
		deliver_all(&w, NULL);
	}
	CHECK_EQ(w.nodes[4].core.log.last, 30);
	/* the next Prepare shows replica 4 a gap: it fetches the ops (state transfer) */
	submit(&w, 0, 5, 41, "x");
	deliver_all(&w, NULL);
	CHECK_EQ(w.nodes[4].core.log.last, 41);
	/* the leader goes silent; the others time out and elect replica 1 */
	w.now += 2 * 1000000ull;
	for (int t = 0; t < 40; t++) {
		w.now += 50000;
		for (uint32_t k = 1; k < w.n; k++)
			vr_tick(&w.nodes[k].core, w.now);
		deliver_all(&w, drop_from0);
	}
	uint64_t v = w.nodes[1].core.view;
	CHECK(v >= 1);
	uint32_t leader = (uint32_t)(v % 5);
	CHECK(leader != 0);
	for (uint32_t k = 1; k < w.n; k++) {
		CHECK_EQ(w.nodes[k].core.view, v);
		CHECK_EQ(w.nodes[k].core.status, EL_STATUS_NORMAL);
		CHECK(w.nodes[k].core.log.last >= 41);
		CHECK_EQ(w.nodes[k].committed_bad, 0);
	}
	/* the new leader takes requests and every survivor commits them */
	submit(&w, leader, 6, 1, "after");
	deliver_all(&w, drop_from0);
	for (uint32_t k = 1; k < w.n; k++)
		CHECK(w.nodes[k].core.commit >= 41);
	world_free(&w);
}

/* ---- 9. recovery and snapshots (VR Revisited 4.3, 5.2) ----------------- */

/* replicas whose datagrams are lost both ways: dead, paused, or cut off */
static uint32_t down_mask;
static int drop_down(const struct node *from, const struct sent *s)
{
	return ((down_mask >> from->idx) & 1) || (s->to != CLIENT && ((down_mask >> s->to) & 1));
}

/* `us` of time in 5 ms ticks for every replica that is up, delivering as we go */
static void run_for(struct world *w, uint64_t us)
{
	for (uint64_t t = 0; t < us; t += 5000) {
		w->now += 5000;
		for (uint32_t k = 0; k < w->n; k++)
			if (!((down_mask >> k) & 1))
				vr_tick(&w->nodes[k].core, w->now);
		deliver_all(w, drop_down);
	}
}

/* The process of replica i ends and starts again: no state, recovering. */
static void restart(struct world *w, uint32_t i, const struct vr_opts *o0)
{
	struct node *nd = &w->nodes[i];
	vr_free(&nd->core);
	for (size_t k = 0; k < nd->nring; k++)
		free(nd->ring[k]);
	nd->nring = 0;
	nd->nout = 0;
	nd->committed_last = 0;
	nd->committed_bad = 0;
	struct vr_opts o = *o0;
	o.recover = 1;
	struct vr_env env = node_env(nd);
	vr_init(&nd->core, &o, &env, w->n, w->f, i, 777 + i + w->now, w->now);
}


static void submit_key(struct world *w, uint32_t at, uint64_t cid, uint64_t rid, const char *key, const char *val)
{
	uint8_t buf[EL_MAX_DGRAM];
	struct sockaddr_in src = client_addr();
	size_t len = request(buf, cid, rid, key, val);
	vr_receive(&w->nodes[at].core, buf, len, &src, w->now);
	vr_flush(&w->nodes[at].core);
}

static void test_new_cluster_forms_from_empty_replicas(void)
{
	struct vr_opts o = opts_default();
	o.recover = 1;
	struct world w;
	world_init(&w, 5, &o);
	for (uint32_t k = 0; k < w.n; k++)
		CHECK_EQ(w.nodes[k].core.status, EL_STATUS_RECOVERING);
	/* the kernel is told: the fast reply's gate stays shut while recovering */
	CHECK_EQ(w.nodes[3].pub.status, EL_STATUS_RECOVERING);
	down_mask = 0;
	run_for(&w, 100000);
	for (uint32_t k = 0; k < w.n; k++) {
		CHECK_EQ(w.nodes[k].core.status, EL_STATUS_NORMAL);
		CHECK_EQ(w.nodes[k].core.view, 0);
	}
	submit(&w, 0, 9, 1, "first");
	deliver_all(&w, NULL);
	CHECK_EQ(w.nodes[0].core.commit, 1);
	world_free(&w);
}

/* While one replica of a new cluster has not started, nobody forms a view. */
static void test_new_cluster_waits_for_every_replica(void)
{
	struct vr_opts o = opts_default();
	o.recover = 1;
	struct world w;
	world_init(&w, 3, &o);
	down_mask = 1u << 2;
	run_for(&w, 2000000);
	CHECK_EQ(w.nodes[0].core.status, EL_STATUS_RECOVERING);
	CHECK_EQ(w.nodes[1].core.status, EL_STATUS_RECOVERING);
	down_mask = 0;
	run_for(&w, 200000);
	for (uint32_t k = 0; k < w.n; k++)
		CHECK_EQ(w.nodes[k].core.status, EL_STATUS_NORMAL);
	world_free(&w);
}

/* drops the Recovery messages of replicas 1..3 (theirs are lost while
 * replicas 0 and 4 form the cluster) */
static int drop_recovery_of_123(const struct node *from, const struct sent *s)
{
	return from->idx >= 1 && from->idx <= 3 && s->buf[5] == EL_MSG_RECOVERY;
}

/* The race seen on loopback: replicas 0 and 4 form the new cluster first and
 * the leader takes requests at once; 1..3 then find a minority that holds
 * ops and can neither form a cluster nor recover (f+1 = 3 normal needed).
 * The leader must order nothing until f followers are normal. */
static void test_new_cluster_leader_waits_for_f_followers(void)
{
	struct vr_opts o = opts_default();
	o.recover = 1;
	struct world w;
	world_init(&w, 5, &o);
	for (int t = 0; t < 30; t++) {
		w.now += 5000;
		for (uint32_t k = 0; k < w.n; k++)
			vr_tick(&w.nodes[k].core, w.now);
		deliver_all(&w, drop_recovery_of_123);
		submit(&w, 0, 9, 1, "early");
		deliver_all(&w, drop_recovery_of_123);
	}
	CHECK_EQ(w.nodes[0].core.status, EL_STATUS_NORMAL);
	CHECK_EQ(w.nodes[4].core.status, EL_STATUS_NORMAL);
	CHECK_EQ(w.nodes[1].core.status, EL_STATUS_RECOVERING);
	CHECK_EQ(w.nodes[0].core.log.last, 0); /* it ordered nothing yet */
	down_mask = 0;
	run_for(&w, 300000);
	for (uint32_t k = 0; k < w.n; k++)
		CHECK_EQ(w.nodes[k].core.status, EL_STATUS_NORMAL);
	submit(&w, 0, 9, 1, "now");
	deliver_all(&w, NULL);
	CHECK_EQ(w.nodes[0].core.commit, 1);
	world_free(&w);
}

static void commit_n(struct world *w, uint32_t leader, uint64_t cid, uint64_t from, uint64_t to)
{
	char key[16], val[32];
	for (uint64_t i = from; i <= to; i++) {
		snprintf(key, sizeof(key), "k%llu", (unsigned long long)(i % 17));
		snprintf(val, sizeof(val), "v%llu", (unsigned long long)i);
		submit_key(w, leader, cid, i, key, val);
		deliver_all(w, drop_down);
	}
}

static void test_restarted_follower_recovers(void)
{
	struct vr_opts o = opts_default();
	struct world w;
	world_init(&w, 3, &o);
	down_mask = 0;
	commit_n(&w, 0, 5, 1, 60);
	CHECK_EQ(w.nodes[0].core.commit, 60);
	restart(&w, 2, &o);
	CHECK_EQ(w.nodes[2].core.status, EL_STATUS_RECOVERING);
	/* it acknowledges nothing while recovering */
	CHECK(last_of_type(&w.nodes[2], EL_MSG_PREPARE_OK) == NULL);
	run_for(&w, 50000);
	struct vr *r2 = &w.nodes[2].core;
	CHECK_EQ(r2->status, EL_STATUS_NORMAL);
	CHECK_EQ(r2->st.recoveries, 1);
	CHECK_EQ(w.nodes[2].installs, 1);
	CHECK(r2->commit >= 60);
	CHECK_EQ(el_kv_digest(&r2->kv), el_kv_digest(&w.nodes[0].core.kv));
	CHECK_EQ(r2->ct.used, w.nodes[0].core.ct.used);
	/* and goes on as a follower */
	commit_n(&w, 0, 5, 61, 70);
	run_for(&w, 100000); /* a heartbeat carries the last commit */
	CHECK_EQ(r2->commit, 70);
	CHECK_EQ(w.nodes[2].committed_bad, 0);
	CHECK_EQ(el_kv_digest(&r2->kv), el_kv_digest(&w.nodes[0].core.kv));
	world_free(&w);
}

/* A follower restarts before the cluster ordered anything: what it installs
 * is the snapshot of op 0 (seen on a 7-replica lab: its chunks were refused). */
static void test_restart_before_any_op(void)
{
	struct vr_opts o = opts_default();
	struct world w;
	world_init(&w, 3, &o);
	/* a view change with no op: view 1, last op 0 (a cluster that only
	 * ever was in view 0 and holds nothing is a new one, not this case) */
	down_mask = 1u << 0;
	run_for(&w, 2000000);
	down_mask = 0;
	run_for(&w, 200000);
	CHECK_EQ(w.nodes[1].core.view, 1);
	CHECK_EQ(w.nodes[0].core.status, EL_STATUS_NORMAL);
	restart(&w, 2, &o);
	run_for(&w, 50000);
	struct vr *r1 = &w.nodes[2].core;
	CHECK_EQ(r1->status, EL_STATUS_NORMAL);
	CHECK_EQ(r1->st.recoveries, 1);
	CHECK_EQ(r1->st.snaps_installed, 1);
	CHECK_EQ(r1->commit, 0);
	commit_n(&w, 1, 5, 1, 10);
	run_for(&w, 100000);
	CHECK_EQ(r1->commit, 10);
	CHECK_EQ(el_kv_digest(&r1->kv), el_kv_digest(&w.nodes[1].core.kv));
	world_free(&w);
}

/* A leader that restarts: its followers change views at its Recovery, and it
 * recovers from the new leader. */
static void test_restarted_leader_recovers(void)
{
	struct vr_opts o = opts_default();
	struct world w;
	world_init(&w, 5, &o);
	down_mask = 0;
	commit_n(&w, 0, 5, 1, 40);
	restart(&w, 0, &o);
	run_for(&w, 1500000);
	struct vr *r0 = &w.nodes[0].core;
	CHECK_EQ(r0->status, EL_STATUS_NORMAL);
	CHECK(r0->view >= 1);
	CHECK_EQ(r0->st.recoveries, 1);
	uint32_t leader = vr_leader_of(r0, r0->view);
	CHECK(leader != 0);
	commit_n(&w, leader, 6, 1, 5);
	run_for(&w, 100000);
	for (uint32_t k = 0; k < w.n; k++) {
		CHECK_EQ(w.nodes[k].core.commit, 45);
		CHECK_EQ(el_kv_digest(&w.nodes[k].core.kv), el_kv_digest(&w.nodes[leader].core.kv));
	}
	world_free(&w);
}

/* Issue 20's scenario: follower 2 paused; 300 writes acknowledged by the
 * leader and follower 1; both killed; follower 1 restarted; follower 2
 * resumed. Two of three replicas lost their state: no view may form (the
 * old code formed view 1 at op 100 and lost 300 acknowledged writes). */
static void test_two_of_three_lost_no_new_view(void)
{
	struct vr_opts o = opts_default();
	struct world w;
	world_init(&w, 3, &o);
	down_mask = 0;
	commit_n(&w, 0, 5, 1, 100);
	down_mask = 1u << 2;
	commit_n(&w, 0, 5, 101, 400);
	CHECK_EQ(w.nodes[0].core.commit, 400);
	CHECK_EQ(w.nodes[2].core.log.last, 100);
	down_mask = 1u << 0 | 1u << 1;  /* leader and follower 1 killed */
	restart(&w, 1, &o);
	down_mask = 1u << 0;            /* follower 1 back, follower 2 resumed */
	run_for(&w, 10000000);
	struct vr *r1 = &w.nodes[1].core, *r2 = &w.nodes[2].core;
	CHECK_EQ(r1->status, EL_STATUS_RECOVERING);
	CHECK(!(r2->status == EL_STATUS_NORMAL && r2->view > 0));
	CHECK_EQ(r1->log.last, 0);
	CHECK(r2->log.last == 100); /* nothing new was decided without the 300 */
	world_free(&w);
}

/* Replica 2 is away while the log moves far past it (the others truncate
 * it): it comes back, catches up from a snapshot, and the logs shrink. */
static void test_behind_the_log_catches_up_by_snapshot(void)
{
	struct vr_opts o = opts_default();
	o.lwm_grace_us = 200000;
	o.keep_ops = 8;
	o.max_prepare = 300; /* small chunks: many per burst */
	struct world w;
	world_init(&w, 3, &o);
	down_mask = 0;
	commit_n(&w, 0, 5, 1, 20);
	down_mask = 1u << 2;
	run_for(&w, 300000); /* past the grace */
	commit_n(&w, 0, 5, 21, 3000);
	struct vr *l = &w.nodes[0].core, *r2 = &w.nodes[2].core;
	CHECK(l->log.first > 2000);
	CHECK_EQ(r2->log.last, 20);
	down_mask = 0;
	run_for(&w, 200000);
	CHECK_EQ(r2->status, EL_STATUS_NORMAL);
	CHECK_EQ(w.nodes[2].installs, 1);
	CHECK_EQ(r2->log.last, 3000);
	CHECK_EQ(el_kv_digest(&r2->kv), el_kv_digest(&l->kv));
	commit_n(&w, 0, 5, 3001, 3100);
	run_for(&w, 100000);
	CHECK_EQ(r2->commit, 3100);
	CHECK_EQ(w.nodes[2].committed_bad, 0);
	/* it reports again: the low-water mark moves and every log is short */
	for (uint32_t k = 0; k < w.n; k++)
		CHECK(w.nodes[k].core.log.last - w.nodes[k].core.log.first < 200);
	world_free(&w);
}

/* Replica 2 is paused well within the grace while the leader commits far
 * more than the hold: no log holds more than the hold for it (before: all
 * 6,000 ops, and grace x rate at any rate), and it catches up by a snapshot
 * when it resumes. */
static void test_paused_replica_does_not_hold_more_than_the_hold(void)
{
	struct vr_opts o = opts_default();
	o.log_hold_ops = 1000;
	struct world w;
	world_init(&w, 3, &o);
	down_mask = 0;
	commit_n(&w, 0, 5, 1, 20);
	down_mask = 1u << 2;
	commit_n(&w, 0, 5, 21, 6000); /* no time passes: replica 2 is within the grace */
	struct vr *l = &w.nodes[0].core, *r1 = &w.nodes[1].core, *r2 = &w.nodes[2].core;
	CHECK(l->log.last - l->log.first + 1 <= 1000 + VC_EXTRA_OPS + 64);
	CHECK(r1->log.last - r1->log.first + 1 <= 1000 + VC_EXTRA_OPS + 64);
	CHECK(l->log.cap <= 4096);
	CHECK_EQ(r2->log.last, 20);
	down_mask = 0;
	run_for(&w, 200000);
	CHECK_EQ(r2->status, EL_STATUS_NORMAL);
	CHECK_EQ(w.nodes[2].installs, 1);
	CHECK_EQ(r2->commit, 6000);
	CHECK_EQ(el_kv_digest(&r2->kv), el_kv_digest(&l->kv));
	CHECK_EQ(w.nodes[2].committed_bad, 0);
	world_free(&w);
}

static int drop_chunks_to_2(const struct node *from, const struct sent *s)
{
	(void)from;
	return s->to == 2 && s->buf[5] == EL_MSG_SNAPSHOT_CHUNK;
}

/* A snapshot's bytes are checked before anything changes: truncated,
 * flipped or lying snapshots are refused, and a good one round-trips. */
static void test_snapshot_decoding(void)
{
	struct vr_opts o = opts_default();
	struct world w;
	world_init(&w, 3, &o);
	down_mask = 0;
	commit_n(&w, 0, 5, 1, 50);
	commit_n(&w, 0, 6, 1, 7);
	struct vr *l = &w.nodes[0].core;
	uint8_t *buf;
	size_t len = el_snap_encode(&l->kv, &l->ct, &l->log, l->executed, l->view, &buf);
	struct el_snap_meta m;
	const char *why = NULL;
	struct el_kv kv;
	struct el_ctable ct;
	struct el_log log;
	el_kv_init(&kv);
	el_ctable_init(&ct, 0);
	el_log_init(&log);
	CHECK_EQ(el_snap_decode(buf, len, &kv, &ct, &log, &m, &why), 0);
	CHECK_EQ(m.op, 57);
	CHECK_EQ(el_kv_digest(&kv), el_kv_digest(&l->kv));
	CHECK_EQ(ct.used, 2);
	CHECK_EQ(log.first, 58);
	el_kv_free(&kv);
	el_ctable_free(&ct);
	el_log_free(&log);
	int refused = 0, tries = 0;
	uint64_t rng = 42;
	for (size_t cut = 0; cut < len; cut++, tries++) {
		el_kv_init(&kv);
		el_ctable_init(&ct, 0);
		el_log_init(&log);
		refused += el_snap_decode(buf, cut, &kv, &ct, &log, &m, &why) != 0;
		el_kv_free(&kv);
		el_ctable_free(&ct);
		el_log_free(&log);
	}
	CHECK_EQ(refused, tries); /* every truncation */
	for (int k = 0; k < 20000; k++) {
		uint8_t *copy = el_xmalloc(len);
		memcpy(copy, buf, len);
		for (int f = 0; f < 1 + (int)(el_rand(&rng) % 4); f++)
			copy[el_rand(&rng) % len] ^= (uint8_t)(1u << (el_rand(&rng) % 8));
		el_kv_init(&kv);
		el_ctable_init(&ct, 4); /* smaller than some senders' tables */
		el_log_init(&log);
		(void)el_snap_decode(copy, len, &kv, &ct, &log, &m, &why); /* must not crash */
		el_kv_free(&kv);
		el_ctable_free(&ct);
		el_log_free(&log);
		free(copy);
	}
	/* chunks that lie (a wrong checksum) are not installed */
	restart(&w, 2, &o);
	struct vr *r2 = &w.nodes[2].core;
	for (int t = 0; t < 20; t++) {
		w.now += 5000;
		vr_tick(r2, w.now);
		deliver_all(&w, drop_chunks_to_2);
	}
	CHECK(r2->rec.fetching);
	uint8_t dg[EL_MAX_DGRAM];
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = EL_MSG_SNAPSHOT_CHUNK;
	h.replica = 0;
	h.opnum = 57;
	h.client_id = len;
	h.request_id = el_snap_sum(buf, len) ^ 1;
	struct el_builder b;
	el_build_start(&b, dg, sizeof(dg), &h);
	el_build_bytes(&b, buf, len);
	size_t dl = el_build_finish(&b);
	feed(&w, 2, dg, dl);
	CHECK_EQ(r2->st.snaps_refused, 1);
	CHECK_EQ(r2->status, EL_STATUS_RECOVERING);
	CHECK_EQ(r2->kv.used, 0);
	/* the genuine transfer then goes through */
	run_for(&w, 100000);
	CHECK_EQ(r2->status, EL_STATUS_NORMAL);
	CHECK_EQ(el_kv_digest(&r2->kv), el_kv_digest(&l->kv));
	free(buf);
	world_free(&w);
}

static void test_config_quorum_intersection(void)
{
	struct el_cluster c;
	char err[256];
	/* n > 2f+1 and f = 0 with n > 1: quorums that need not intersect */
	CHECK(el_cluster_parse("f 1\nreplica 127.0.0.1:1\nreplica 127.0.0.1:2\nreplica 127.0.0.1:3\nreplica 127.0.0.1:4\n", &c, err, sizeof(err)) != 0);
	CHECK(strstr(err, "exactly 2f+1") != NULL);
	CHECK(el_cluster_parse("f 0\nreplica 127.0.0.1:1\nreplica 127.0.0.1:2\nreplica 127.0.0.1:3\n", &c, err, sizeof(err)) != 0);
	CHECK_EQ(el_cluster_parse("f 0\nreplica 127.0.0.1:1\n", &c, err, sizeof(err)), 0);
	el_cluster_free(&c);
	CHECK_EQ(el_cluster_parse("f 1\nreplica 127.0.0.1:1\nreplica 127.0.0.1:2\nreplica 127.0.0.1:3\nmtu 3000\n", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.mtu, 3000);
	el_cluster_free(&c);
	CHECK(el_cluster_parse("f 1\nreplica 127.0.0.1:1\nreplica 127.0.0.1:2\nreplica 127.0.0.1:3\nmtu 99\n", &c, err, sizeof(err)) != 0);
	/* the client table's size is the cluster's, not a replica's */
	CHECK_EQ(el_cluster_parse("f 0\nreplica 127.0.0.1:1\nmax-clients 64\n", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.max_clients, 64);
	el_cluster_free(&c);
	CHECK_EQ(el_cluster_parse("f 0\nreplica 127.0.0.1:1\n", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.max_clients, 0);
	el_cluster_free(&c);
	CHECK(el_cluster_parse("f 0\nreplica 127.0.0.1:1\nmax-clients 15\n", &c, err, sizeof(err)) != 0);
	CHECK(strstr(err, "max-clients must be 16..16777216") != NULL);
}

void vr_tests(int *passed, int *failed);
void vr_tests(int *passed, int *failed)
{
	static const struct h_test tests[] = {
		{ "vr: only the kernel's mark counts as a quorum", test_quorum_mark },
		{ "vr: fast reply: a DoViewChange holds every op the kernel acknowledged", test_fast_reply_view_change },
		{ "vr: fast reply: a late record is counted, not applied", test_fast_reply_late_record },
		{ "vr: hostile view numbers and own-index messages do not abort", test_hostile_views },
		{ "vr: the uncommitted window keeps a DoViewChange in one datagram", test_window_keeps_dvc_in_one_datagram },
		{ "vr: log, client table and values stay bounded", test_memory_bounded },
		{ "vr: a replica silent past the grace period no longer pins the log", test_silent_replica_lwm },
		{ "vr: Prepares within the MTU; only those are broadcast-marked", test_prepare_size_and_broadcast },
		{ "vr: view change and state transfer", test_view_change_and_state_transfer },
		{ "config: n = 2f+1 exactly; mtu; max-clients", test_config_quorum_intersection },
		{ "recovery: a new cluster forms from replicas that hold nothing", test_new_cluster_forms_from_empty_replicas },
		{ "recovery: a new cluster waits for every replica", test_new_cluster_waits_for_every_replica },
		{ "recovery: a new cluster's leader orders nothing until f followers are normal", test_new_cluster_leader_waits_for_f_followers },
		{ "recovery: a restarted follower recovers from the leader's snapshot", test_restarted_follower_recovers },
		{ "the window with the quorum prune stays below the quorum slots (at the limit)", test_window_bounded_by_quorum_slots },
		{ "hostile: a PrepareOK beyond the leader's log is dropped and counted, commits nothing", test_ack_beyond_log_dropped },
		{ "hostile: Commit, NewState and a snapshot chunk naming a replica that is not the leader are dropped and counted", test_leader_only_messages_from_another_replica },
		{ "pre-vote: a cut-off follower comes back without a view change and rejoins", test_cut_off_follower_rejoins_without_view_change },
		{ "recovery: a follower restarted before any op installs the snapshot of op 0", test_restart_before_any_op },
		{ "recovery: a restarted leader recovers after its followers change views", test_restarted_leader_recovers },
		{ "recovery: two of three replicas lost their state: no new view", test_two_of_three_lost_no_new_view },
		{ "snapshot: a replica behind every log catches up, then logs shrink", test_behind_the_log_catches_up_by_snapshot },
		{ "lwm: a paused replica holds back no more than the hold, then catches up", test_paused_replica_does_not_hold_more_than_the_hold },
		{ "snapshot: bytes are checked before anything changes", test_snapshot_decoding },
	};
	h_run(tests, sizeof(tests) / sizeof(tests[0]), passed, failed);
}
