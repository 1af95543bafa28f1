/* SPDX-License-Identifier: MIT
 *
 * vr.c - the Viewstamped Replication protocol (VR Revisited: normal case,
 * view change, state transfer, client table) over the key-value store, as a
 * core without sockets (vr.h). Semantics of every message: PROTOCOL.md.
 *
 * Fast paths, and what keeps them safe:
 *  - quorum prune: only a PrepareOK the kernel marked EL_F_QUORUM stands for
 *    a quorum; any other PrepareOK is one follower's ack.
 *  - fast reply: before every step that leaves the current view's normal
 *    status, env.quiesce() closes the kernel's gate, waits for programs in
 *    flight and feeds every acknowledged record back here, so a
 *    DoViewChange never lacks an op the kernel acknowledged. Entering a view
 *    arms el_fr_state before the gate opens.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vr.h"
#include "snapshot.h"
#include "util.h"
#ifdef EL_LAB_FAULTS
#include "lab_faults.h"
#endif

uint32_t vr_leader_of(const struct vr *r, uint64_t view)
{
	return (uint32_t)(view % r->n);
}

const char *vr_status_name(uint32_t status)
{
	switch (status) {
	case EL_STATUS_NORMAL: return "normal";
	case EL_STATUS_VIEW_CHANGE: return "view change";
	case EL_STATUS_RECOVERING: return "recovering";
	default: return "unknown";
	}
}

static int am_leader(const struct vr *r)
{
	return vr_leader_of(r, r->view) == r->me;
}

static uint32_t kernel_enabled(const struct vr *r)
{
	return r->env.enabled ? r->env.enabled(r->env.ctx) : 0;
}

/* A named, non-inlined function so backtraces of the deliberate crash
 * read as what they are. */
__attribute__((noinline)) static void crash_on_purpose(uint64_t ops)
{
	LOG_ERROR("--crash-after reached after %llu ops: crashing on purpose (SIGSEGV)",
		  (unsigned long long)ops);
	volatile int *volatile p = NULL;
	*p = 42;
	abort(); /* not reached */
}

/* ------------------------------------------------------------------ */
/* sending                                                            */

static void send_replica(struct vr *r, uint32_t idx, const void *buf, size_t len)
{
	assert(idx < r->n && idx != r->me);
	r->env.send(r->env.ctx, idx, buf, len);
}

static void send_others(struct vr *r, const void *buf, size_t len)
{
	for (uint32_t i = 0; i < r->n; i++)
		if (i != r->me)
			send_replica(r, i, buf, len);
}

/* Prepare/Commit from the leader: while the kernel's broadcast is on, ONE
 * copy marked EL_F_BCAST goes to the lowest-index follower and the TC egress
 * program delivers the others. A datagram larger than the lab MTU would be
 * fragmented, and TC cannot fan out fragments: it goes to each follower. */
static void send_followers(struct vr *r, uint8_t *buf, size_t len)
{
	r->last_sent = r->now;
	if (r->o.fast_broadcast && len <= r->o.max_prepare && (kernel_enabled(r) & EL_FP_BROADCAST)) {
		buf[6] |= EL_F_BCAST;
		send_replica(r, r->me == 0 ? 1 : 0, buf, len);
		return;
	}
	buf[6] &= (uint8_t)~EL_F_BCAST;
	send_others(r, buf, len);
}

static struct el_hdr hdr(const struct vr *r, uint8_t type)
{
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.replica = (uint8_t)r->me;
	h.view = r->view;
	h.commit = r->commit;
	h.opnum = r->log.last;
	/* Prepare/Commit from the leader: every replica committed up to lwm */
	if (type == EL_MSG_PREPARE || type == EL_MSG_COMMIT)
		h.client_id = r->lwm;
	return h;
}

static size_t build_empty(struct vr *r, struct el_hdr h)
{
	struct el_builder b;
	el_build_start(&b, r->sbuf, sizeof(r->sbuf), &h);
	return el_build_finish(&b);
}

/* Builds a message carrying log entries [from .. to], stopping early when
 * the datagram would pass `cap` bytes (but always with the first entry when
 * it fits the buffer at all). Sets opnum to the last entry included and aux
 * to the count. Returns the datagram length; *last_included = from - 1 when
 * nothing fit. Entries outside the log are never read. */
static size_t build_entries(struct vr *r, struct el_hdr h, uint64_t from, uint64_t to, size_t cap,
			    uint64_t *last_included)
{
	struct el_builder b;
	el_build_start(&b, r->sbuf, sizeof(r->sbuf), &h);
	if (to > r->log.last)
		to = r->log.last;
	uint64_t op = from;
	for (; op <= to; op++) {
		const struct el_log_entry *e = el_log_get(&r->log, op);
		if (!e)
			break; /* below what we still hold */
		if (op > from && b.len + EL_ENTRY_HDR_LEN + e->len > cap)
			break;
		if (el_build_entry(&b, e->client_id, e->request_id, e->data, e->len))
			break;
	}
	uint64_t last = op - 1; /* from - 1 when nothing fit */
	el_build_set_opnum(&b, last);
	el_build_set_aux(&b, (uint32_t)(last + 1 - from));
	if (last_included)
		*last_included = last;
	return el_build_finish(&b);
}

static void send_prepare_ok(struct vr *r, uint8_t flags)
{
	struct el_hdr h = hdr(r, EL_MSG_PREPARE_OK);
	h.flags = flags;
	size_t len = build_empty(r, h);
	send_replica(r, vr_leader_of(r, r->view), r->sbuf, len);
}

static void request_state(struct vr *r, int force)
{
	if (am_leader(r) || r->status != EL_STATUS_NORMAL)
		return;
	/* ask at once for a new gap; repeat for the same gap only after a while */
	if (!force && r->log.last == r->get_state_at && r->now - r->last_get_state < r->o.retransmit_us / 2)
		return;
	r->last_get_state = r->now;
	r->get_state_at = r->log.last;
	struct el_hdr h = hdr(r, EL_MSG_GET_STATE);
	h.aux = EL_STATE_LOG;
	size_t len = build_empty(r, h);
	LOG_DEBUG("asking replica %u for ops after %llu", vr_leader_of(r, r->view),
		  (unsigned long long)r->log.last);
	send_replica(r, vr_leader_of(r, r->view), r->sbuf, len);
}

/* ------------------------------------------------------------------ */
/* eBPF control state                                                 */

static void publish(struct vr *r)
{
	if (!r->env.publish)
		return;
	struct vr_public p = {
		.view = r->view,
		.status = r->status,
		.leader = vr_leader_of(r, r->view),
		.last_op = r->log.last,
		.commit = r->commit,
	};
	if (r->published_valid && memcmp(&p, &r->published, sizeof(p)) == 0)
		return;
	r->published = p;
	r->published_valid = 1;
	r->env.publish(r->env.ctx, &p);
}

/* Before leaving the current view's normal status: nothing the kernel
 * acknowledged in it may be missing from the log afterwards. */
static void quiesce(struct vr *r)
{
	if (!r->o.fast_reply || !r->env.quiesce || r->in_quiesce)
		return;
	r->in_quiesce = 1;
	r->env.quiesce(r->env.ctx, r->view);
	r->in_quiesce = 0;
	/* the gate is closed now: what the kernel sees must say so too */
	r->published_valid = 0;
}

/* Slow-path appends: the kernel may acknowledge from log.last on. */
static void reply_progress(struct vr *r)
{
	if (r->o.fast_reply && r->env.reply_progress && r->status == EL_STATUS_NORMAL && !am_leader(r))
		r->env.reply_progress(r->env.ctx, r->log.last);
}

/* ------------------------------------------------------------------ */
/* execution                                                          */

static void send_reply(struct vr *r, const struct el_client *c, const struct sockaddr_in *to)
{
	struct el_hdr h = hdr(r, EL_MSG_REPLY);
	h.opnum = c->opnum;
	h.client_id = c->client_id;
	h.request_id = c->request_id;
	struct el_builder b;
	el_build_start(&b, r->sbuf, sizeof(r->sbuf), &h);
	int rc = el_build_bytes(&b, c->reply, c->reply_len);
	assert(rc == 0);
	size_t len = el_build_finish(&b);
	r->env.send_client(r->env.ctx, to, r->sbuf, len);
}

static void execute_one(struct vr *r, uint64_t opnum)
{
	const struct el_log_entry *e = el_log_get(&r->log, opnum);
	assert(e); /* ops are forgotten only behind what every replica executed */
	struct el_op op;
	int rc = el_op_decode(e->data, e->len, &op);
	assert(rc == EL_OK); /* only validated ops enter the log */
	/* A client's first request is request 1 (it opens its session). A
	 * client the table does not hold asking for a later one was evicted
	 * (the table is bounded) or never started: its last reply is gone, so
	 * executing could apply a retry twice. Refused, on every replica alike
	 * (the table is replicated state), so exactly-once holds. */
	if (e->request_id > 1 && !el_ctable_find(&r->ct, e->client_id)) {
		r->st.expired++;
		return;
	}
	struct el_client *c = el_ctable_upsert(&r->ct, e->client_id);
	if (c->request_id >= e->request_id) {
		/* the same request logged twice (a retry raced a view change):
		 * the client table makes it execute once */
		LOG_DEBUG("op %llu: duplicate request %llu/%llu not executed again",
			  (unsigned long long)opnum, (unsigned long long)e->client_id,
			  (unsigned long long)e->request_id);
		return;
	}
	size_t n = el_kv_apply(&r->kv, &op, r->reply_buf);
	el_client_set_reply(c, e->request_id, opnum, r->reply_buf, n);
	el_ctable_touch(&r->ct, c);
	if (am_leader(r) && r->status == EL_STATUS_NORMAL) {
		const struct el_client *a = el_ctable_find(&r->addrs, e->client_id);
		if (a && a->has_addr)
			send_reply(r, c, &a->addr);
	}
	r->st.executed++;
	if (r->o.crash_after && r->st.executed >= r->o.crash_after)
		crash_on_purpose(r->st.executed);
}

/* Ops that every replica executed (minus a margin for view changes) are
 * never needed again: drop them. */
static void forget_old(struct vr *r)
{
	uint64_t keep = r->o.keep_ops ? r->o.keep_ops : VC_EXTRA_OPS;
	uint64_t upto = r->lwm < r->executed ? r->lwm : r->executed;
	/* a snapshot on its way out: its receiver asks for the ops after it next */
	if (r->sout.buf && r->now - r->sout.used < VR_SNAP_KEEP_US && r->sout.op + keep < upto)
		upto = r->sout.op + keep;
	if (upto > keep && upto - keep >= r->log.first)
		el_log_forget(&r->log, upto - keep);
}

static void commit_to(struct vr *r, uint64_t upto)
{
	if (upto > r->log.last)
		upto = r->log.last;
	if (upto <= r->commit)
		return;
	r->commit = upto;
	while (r->executed < r->commit) {
		execute_one(r, ++r->executed);
		if (r->env.committed)
			r->env.committed(r->env.ctx, r->executed, el_log_get(&r->log, r->executed));
	}
}

/* A leader's view of the low-water mark: the lowest commit any replica
 * reported, among those heard from within the grace period (a dead one must
 * not make the log grow without bound), and never more than the hold behind
 * our commit (nor a paused one). Commit numbers only rise, in every view, so
 * an old report is still a lower bound. */
static void update_lwm(struct vr *r)
{
	uint64_t low = r->commit;
	uint64_t grace = r->o.lwm_grace_us ? r->o.lwm_grace_us : VR_DEFAULT_LWM_GRACE_US;
	uint64_t hold = r->o.log_hold_ops ? r->o.log_hold_ops : VR_DEFAULT_LOG_HOLD;
	for (uint32_t i = 0; i < r->n; i++)
		if (i != r->me && r->now - r->peer_heard[i] <= grace && r->peer_commit[i] < low)
			low = r->peer_commit[i];
	if (r->commit > hold && low < r->commit - hold)
		low = r->commit - hold;
	if (low > r->lwm)
		r->lwm = low;
	forget_old(r);
}

/* ------------------------------------------------------------------ */
/* normal case                                                        */

static int in_flight(struct vr *r, uint64_t cid, uint64_t rid)
{
	for (size_t i = 0; i < r->npend; i++)
		if (r->pend[i].client_id == cid && r->pend[i].request_id == rid)
			return 1;
	for (uint64_t op = r->commit + 1; op <= r->log.last; op++) {
		const struct el_log_entry *e = el_log_get(&r->log, op);
		if (e && e->client_id == cid && e->request_id == rid)
			return 1;
	}
	return 0;
}

static void on_request(struct vr *r, const struct el_msg *m, const struct sockaddr_in *src)
{
	if (r->status != EL_STATUS_NORMAL || !am_leader(r) || r->unconfirmed)
		return; /* only the leader of a normal (and confirmed) view orders requests */
	/* where to reply: the leader's own table, never the replicated one */
	struct el_client *a = el_ctable_upsert(&r->addrs, m->h.client_id);
	a->addr = *src;
	a->has_addr = 1;
	el_ctable_touch(&r->addrs, a);
	struct el_client *c = el_ctable_find(&r->ct, m->h.client_id);
	if (!c && m->h.request_id > 1 && !in_flight(r, m->h.client_id, m->h.request_id - 1)) {
		/* no session (evicted, or request 1 not executed yet here): execution
		 * would refuse it; the client retries or starts a new session */
		if (!r->st.expired_requests++ || !(r->st.expired_requests & 1023))
			LOG_WARN("client %llu: request %llu but no session in the client table (evicted after %zu newer "
				 "clients, or its request 1 is not executed yet): refused; a new client id starts a new session",
				 (unsigned long long)m->h.client_id, (unsigned long long)m->h.request_id, r->ct.max);
		return;
	}
	if (c && m->h.request_id < c->request_id)
		return; /* older than what the client already saw */
	if (c && m->h.request_id == c->request_id) {
		send_reply(r, c, src); /* a retry of an executed request */
		return;
	}
	if (in_flight(r, m->h.client_id, m->h.request_id))
		return;
	if (r->npend == VR_MAX_PENDING) {
		r->st.pending_full++; /* the client retries */
		return;
	}
	if (r->npend == r->pend_cap) {
		r->pend_cap = r->pend_cap ? r->pend_cap * 2 : 64;
		r->pend = el_xrealloc(r->pend, r->pend_cap * sizeof(*r->pend));
	}
	struct vr_pending *p = &r->pend[r->npend++];
	p->client_id = m->h.client_id;
	p->request_id = m->h.request_id;
	assert(m->payload_len <= EL_MAX_OP_LEN);
	p->len = (uint16_t)m->payload_len;
	memcpy(p->data, m->payload, m->payload_len);
}

/* Sends ops [from .. to] as Prepares of at most max_prepare bytes each
 * (the first op of each always goes, even when it alone is larger). */
static void send_prepares(struct vr *r, uint64_t from, uint64_t to, const uint8_t *only)
{
	while (from <= to) {
		uint64_t last;
		size_t len = build_entries(r, hdr(r, EL_MSG_PREPARE), from, to, r->o.max_prepare, &last);
		if (last < from)
			break; /* below what we still hold: the follower needs a state transfer */
		if (only) {
			for (uint32_t i = 0; i < r->n; i++)
				if (i != r->me && only[i])
					send_replica(r, i, r->sbuf, len);
			r->last_sent = r->now;
		} else {
			send_followers(r, r->sbuf, len);
		}
		from = last + 1;
	}
}

/* Turns queued requests into Prepares of up to --batch ops each, while the
 * uncommitted window has room. */
void vr_flush(struct vr *r)
{
	size_t i = 0;
	if (r->status == EL_STATUS_NORMAL && am_leader(r)) {
		size_t unc = el_log_wire_bytes(&r->log, r->commit + 1, r->log.last);
		while (i < r->npend) {
			uint64_t from = r->log.last + 1;
			for (size_t k = 0; k < r->o.batch && i < r->npend; k++, i++) {
				struct vr_pending *p = &r->pend[i];
				size_t need = EL_ENTRY_HDR_LEN + p->len;
				if (((unc + need > r->o.window_bytes) ||
				     (r->o.window_ops && r->log.last - r->commit >= r->o.window_ops)) &&
				    r->log.last > r->commit) {
					r->st.window_full++;
					break; /* wait for commits to free the window */
				}
				el_log_append(&r->log, p->client_id, p->request_id, p->data, p->len);
				unc += need;
			}
			if (r->log.last < from)
				break;
			if (r->f == 0)
				commit_to(r, r->log.last);
			else
				send_prepares(r, from, r->log.last, NULL);
			if (i < r->npend && r->log.last > r->commit &&
			    (unc + EL_ENTRY_HDR_LEN + r->pend[i].len > r->o.window_bytes ||
			     (r->o.window_ops && r->log.last - r->commit >= r->o.window_ops)))
				break;
		}
	}
	if (i) {
		memmove(r->pend, r->pend + i, (r->npend - i) * sizeof(*r->pend));
		r->npend -= i;
	}
	if (r->status != EL_STATUS_NORMAL || !am_leader(r))
		r->npend = 0; /* not ours to order any more */
	publish(r);
}

static void enter_normal(struct vr *r, uint64_t view, const char *how)
{
	r->view = view;
	r->status = EL_STATUS_NORMAL;
	r->ever_normal = 1;
	r->last_normal_view = view;
	r->normal_since = r->now;
	r->last_heard = r->now;
	r->last_report = r->now;
	r->sent_dvc = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		free(r->dvc[i].buf);
		r->dvc[i].buf = NULL;
	}
	el_quorum_reset(&r->q, vr_leader_of(r, view));
	/* peer_commit stays: commit numbers are final across views; everyone
	 * gets a fresh grace period under the new leader */
	for (uint32_t i = 0; i < r->n; i++)
		r->peer_heard[i] = r->now;
	r->retx_commit = r->commit;
	r->last_retx = r->now;
	LOG_INFO("view %llu normal (%s), leader %u%s, last op %llu, commit %llu",
		 (unsigned long long)view, how, vr_leader_of(r, view), am_leader(r) ? " (me)" : "",
		 (unsigned long long)r->log.last, (unsigned long long)r->commit);
	/* the fast reply's progress first, then the gate opens (publish) */
	if (r->env.arm_reply)
		r->env.arm_reply(r->env.ctx, view, r->log.last);
	publish(r);
}

/* We learned that `view` is running normally without us: keep only what is
 * surely committed and fetch the rest from its leader (VR Revisited 4.3). */
static void adopt_view(struct vr *r, uint64_t view)
{
	quiesce(r);
	el_log_truncate(&r->log, r->commit);
	enter_normal(r, view, "joined late");
	request_state(r, 1);
}

/* Appends entries [m->first_op ..] that extend our log; entries we already
 * have are the same ops (same view, same leader) and are skipped. Returns
 * -1 on a gap. */
static int append_entries(struct vr *r, const struct el_msg *m)
{
	if (m->n_entries == 0)
		return 0;
	if (m->first_op > r->log.last + 1)
		return -1;
	struct el_entry_iter it;
	struct el_entry_ref e;
	el_entry_iter_init(&it, m);
	uint64_t op = m->first_op;
	while (el_entry_next(&it, &e)) {
		if (op == r->log.last + 1)
			el_log_append(&r->log, e.client_id, e.request_id, e.data, e.len);
		op++;
	}
	return 0;
}

/* Checks that a normal-case message is from the leader of a view we are in,
 * joining that view first when it is newer. Returns 0 to go on. */
static int accept_leader_msg(struct vr *r, const struct el_msg *m)
{
	if (m->h.replica != vr_leader_of(r, m->h.view) || m->h.replica == r->me) {
		r->st.not_leader++;
		return -1;
	}
	if (m->h.view < r->view) {
		/* We left view w = m->h.view for a view change nobody joined (cut
		 * off, we timed out; the others stayed with w's leader). Going back
		 * is safe while we promised nothing past w: no DoViewChange sent in
		 * a later view, so no later view can have been built on our log. */
		if (r->status != EL_STATUS_VIEW_CHANGE || m->h.view < r->last_normal_view || m->h.view < r->dvc_view_max)
			return -1;
		r->st.rejoins++;
		LOG_INFO("view change to view %llu abandoned: leader %u of view %llu is normal; rejoining it",
			 (unsigned long long)r->view, m->h.replica, (unsigned long long)m->h.view);
		if (m->h.view == r->last_normal_view) {
			/* our log is a prefix of the leader's in w: keep every op */
			enter_normal(r, m->h.view, "rejoined");
		} else {
			adopt_view(r, m->h.view);
		}
	} else if (m->h.view > r->view || r->status != EL_STATUS_NORMAL) {
		adopt_view(r, m->h.view);
	}
	r->last_heard = r->now;
	/* the leader's low-water mark, never past what we committed ourselves */
	uint64_t lwm = m->h.client_id < r->commit ? m->h.client_id : r->commit;
	if (lwm > r->lwm)
		r->lwm = lwm;
	return 0;
}

static void on_prepare(struct vr *r, const struct el_msg *m)
{
	if (accept_leader_msg(r, m))
		return;
	if (append_entries(r, m) < 0) {
		request_state(r, 0);
		send_prepare_ok(r, 0); /* tells the leader where we are */
		return;
	}
	commit_to(r, m->h.commit);
	forget_old(r);
	reply_progress(r);
	send_prepare_ok(r, 0);
}

static void try_held_records(struct vr *r);

void vr_kernel_record(struct vr *r, const void *buf, size_t len)
{
	struct el_msg m;
	if (el_msg_decode(buf, len, r->n, &m) != EL_OK || m.h.type != EL_MSG_PREPARE) {
		r->st.malformed++;
		return;
	}
	r->st.fr_records++;
	/* the kernel acknowledges only in the view and status we published, and
	 * every view step drains the ring first: a record from elsewhere is late */
	if (m.h.view != r->view || r->status != EL_STATUS_NORMAL || am_leader(r) ||
	    m.h.replica != vr_leader_of(r, r->view)) {
		r->st.fr_late++;
		LOG_WARN("fast-reply record for view %llu ops %llu..%llu arrived in view %llu (%s): dropped",
			 (unsigned long long)m.h.view, (unsigned long long)m.first_op,
			 (unsigned long long)m.h.opnum, (unsigned long long)r->view, vr_status_name(r->status));
		return;
	}
	if (m.first_op > r->log.last + 1) {
		/* the kernel acknowledged it: keep it until the gap fills */
		r->st.fr_gap++;
		r->held = el_xrealloc(r->held, (r->nheld + 1) * sizeof(*r->held));
		struct vr_dvc *h = &r->held[r->nheld++];
		h->buf = el_xmalloc(len);
		memcpy(h->buf, buf, len);
		h->len = len;
		el_msg_decode(h->buf, h->len, r->n, &h->m);
		request_state(r, 0);
		return;
	}
	r->last_heard = r->now;
	append_entries(r, &m);
	uint64_t lwm = m.h.client_id < r->commit ? m.h.client_id : r->commit;
	if (lwm > r->lwm)
		r->lwm = lwm;
	commit_to(r, m.h.commit);
	forget_old(r);
	if (r->nheld)
		try_held_records(r);
}

/* Held records whose gap is filled now, in any order they came. */
static void try_held_records(struct vr *r)
{
	for (int progress = 1; progress && r->nheld;) {
		progress = 0;
		for (size_t i = 0; i < r->nheld; i++) {
			struct vr_dvc *h = &r->held[i];
			int drop = h->m.h.view != r->view || h->m.h.opnum <= r->log.last;
			if (!drop && h->m.first_op > r->log.last + 1)
				continue;
			if (!drop) {
				append_entries(r, &h->m);
				commit_to(r, h->m.h.commit);
			}
			free(h->buf);
			r->held[i] = r->held[--r->nheld];
			progress = 1;
			break;
		}
	}
}

static void on_prepare_ok(struct vr *r, const struct el_msg *m)
{
	if (m->h.view != r->view || r->status != EL_STATUS_NORMAL || !am_leader(r))
		return;
	if (m->h.opnum > r->log.last) {
		/* no follower can hold an op of our view that we never logged:
		 * counting it would commit ops nobody else has */
		r->st.acks_beyond_log++;
		if (r->st.acks_beyond_log <= 10 || r->st.acks_beyond_log % 1000 == 0)
			LOG_WARN("dropped a PrepareOK from replica %u for op %llu beyond our log (last op %llu); %llu so far",
				 m->h.replica, (unsigned long long)m->h.opnum, (unsigned long long)r->log.last,
				 (unsigned long long)r->st.acks_beyond_log);
		return;
	}
	if (r->unconfirmed && !r->confirmed[m->h.replica]) {
		r->confirmed[m->h.replica] = 1;
		uint32_t k = 0;
		for (uint32_t i = 0; i < r->n; i++)
			k += r->confirmed[i];
		if (k >= r->f) {
			r->unconfirmed = 0;
			LOG_INFO("view 0: %u followers are normal in the new cluster: taking requests", k);
		}
	}
	if (m->h.commit > r->peer_commit[m->h.replica] && m->h.commit <= r->log.last)
		r->peer_commit[m->h.replica] = m->h.commit;
	r->peer_heard[m->h.replica] = r->now;
	el_quorum_ack(&r->q, m->h.replica, m->h.opnum);
	uint64_t upto = el_quorum_committable(&r->q);
	/* only the kernel's quorum prune sets this mark, and only on the
	 * PrepareOK completing f distinct acks for (view, opnum); every other
	 * PrepareOK is just its sender's ack */
	if (m->h.flags & EL_F_QUORUM) {
		/* the token never travels on the wire: a mark without it did not
		 * come from our quorum prune (IP options and fragments pass the
		 * dispatcher unparsed; a reassembled datagram can carry anything) */
		uint64_t token = r->env.quorum_token ? r->env.quorum_token(r->env.ctx) : 0;
		if (!r->o.kernel_quorum || !token || m->h.request_id != token) {
			r->st.forged_marks++;
		} else if (m->h.opnum <= r->log.last) {
			r->st.quorum_marks++;
			if (m->h.opnum > upto)
				upto = m->h.opnum;
		}
	}
	commit_to(r, upto);
	update_lwm(r);
}

static void on_commit(struct vr *r, const struct el_msg *m)
{
	if (accept_leader_msg(r, m))
		return;
	if (m->h.opnum > r->log.last)
		request_state(r, 0);
	commit_to(r, m->h.commit);
	forget_old(r);
}

/* ------------------------------------------------------------------ */
/* state transfer                                                     */

static void serve_snapshot(struct vr *r, uint32_t to, uint64_t op, uint64_t offset);

static void on_get_state(struct vr *r, const struct el_msg *m)
{
	uint64_t upto;
	struct el_hdr h = hdr(r, EL_MSG_NEW_STATE);
	h.request_id = m->h.aux;
	h.client_id = r->log.last; /* how far the requester should get */
	if (m->h.aux == EL_STATE_COMMITTED) {
		upto = r->commit; /* committed ops are final in every view */
	} else {
		if (r->status != EL_STATUS_NORMAL || m->h.view != r->view || !am_leader(r))
			return;
		upto = r->log.last;
	}
	if (m->h.opnum >= upto)
		return;
	if (m->h.opnum + 1 < r->log.first) {
		/* it was silent past the grace period and the log moved on: it
		 * catches up from a snapshot of our state instead */
		if (!r->st.behind_log++ || !(r->st.behind_log & 1023))
			LOG_INFO("replica %u asks for ops after %llu but the log starts at op %llu: sending a snapshot",
				 m->h.replica, (unsigned long long)m->h.opnum, (unsigned long long)r->log.first);
		serve_snapshot(r, m->h.replica, 0, 0);
		return;
	}
	size_t len = build_entries(r, h, m->h.opnum + 1, upto, sizeof(r->sbuf), NULL);
	send_replica(r, m->h.replica, r->sbuf, len);
}

static void try_complete_view_change(struct vr *r);

static void on_new_state(struct vr *r, const struct el_msg *m)
{
	if (m->h.request_id == EL_STATE_COMMITTED) {
		if (r->status != EL_STATUS_VIEW_CHANGE || !am_leader(r) || m->h.view != r->view)
			return;
		/* replace or extend our log with committed ops beyond our commit */
		struct el_entry_iter it;
		struct el_entry_ref e;
		el_entry_iter_init(&it, m);
		uint64_t op = m->first_op, upto = r->commit;
		while (el_entry_next(&it, &e)) {
			if (op > r->commit && op <= r->log.last + 1 && op == upto + 1) {
				if (op <= r->log.last)
					el_log_replace(&r->log, op, e.client_id, e.request_id, e.data, e.len);
				else
					el_log_append(&r->log, e.client_id, e.request_id, e.data, e.len);
				upto = op;
			}
			op++;
		}
		if (upto > r->commit)
			r->vc_started = r->now; /* progressing: do not give up on this view yet */
		commit_to(r, upto);
		try_complete_view_change(r);
		return;
	}
	if (m->h.replica != vr_leader_of(r, m->h.view)) {
		r->st.not_leader++;
		return;
	}
	if (m->h.view != r->view || r->status != EL_STATUS_NORMAL || am_leader(r) ||
	    m->h.replica != vr_leader_of(r, r->view))
		return;
	r->last_heard = r->now;
	if (append_entries(r, m) < 0)
		return;
	commit_to(r, m->h.commit);
	forget_old(r);
	reply_progress(r);
	if (r->nheld)
		try_held_records(r);
	send_prepare_ok(r, 0);
	if (r->log.last < m->h.client_id)
		request_state(r, 1);
}

/* ------------------------------------------------------------------ */
/* view change                                                        */

static void record_dvc(struct vr *r, uint32_t idx, const void *buf, size_t len)
{
	struct vr_dvc *d = &r->dvc[idx];
	free(d->buf);
	d->buf = el_xmalloc(len);
	memcpy(d->buf, buf, len);
	d->len = len;
	int rc = el_msg_decode(d->buf, d->len, r->n, &d->m);
	assert(rc == EL_OK);
}

/* Builds our DoViewChange (or StartView) with the log suffix from a bit
 * before our commit point. Returns the length; 0 if even the uncommitted
 * suffix does not fit (then we must not claim a shorter log; the leader's
 * window keeps this from happening). */
static size_t build_log_msg(struct vr *r, uint8_t type, uint64_t log_view)
{
	struct el_hdr h = hdr(r, type);
	h.client_id = log_view;
	uint64_t from = r->commit + 1 > VC_EXTRA_OPS ? r->commit + 1 - VC_EXTRA_OPS : 1;
	if (from < r->log.first)
		from = r->log.first;
	if (from > r->commit + 1)
		from = r->commit + 1;
	for (;;) {
		uint64_t last;
		size_t len = build_entries(r, h, from, r->log.last, sizeof(r->sbuf), &last);
		if (last == r->log.last)
			return len;
		if (from > r->commit)
			return 0;
		/* drop committed extras first: only the uncommitted suffix is needed */
		uint64_t step = (r->log.last - last) + 1;
		from = from + step > r->commit + 1 ? r->commit + 1 : from + step;
	}
}

static void send_dvc(struct vr *r)
{
	size_t len = build_log_msg(r, EL_MSG_DO_VIEW_CHANGE, r->last_normal_view);
	if (!len) {
		LOG_ERROR("view %llu: uncommitted log suffix %llu..%llu does not fit in one "
			  "DoViewChange; not sending",
			  (unsigned long long)r->view, (unsigned long long)r->commit + 1,
			  (unsigned long long)r->log.last);
		return;
	}
	LOG_DEBUG("sending DoViewChange for view %llu to replica %u", (unsigned long long)r->view,
		  vr_leader_of(r, r->view));
	r->sent_dvc = 1;
	/* a DoViewChange to ourselves builds a view only if we complete it
	 * (then last_normal_view says so); one sent to another may have */
	if (!am_leader(r) && r->view > r->dvc_view_max)
		r->dvc_view_max = r->view;
	free(r->my_dvc);
	r->my_dvc = el_xmalloc(len);
	memcpy(r->my_dvc, r->sbuf, len);
	r->my_dvc_len = len;
	if (am_leader(r)) {
		record_dvc(r, r->me, r->my_dvc, len);
		try_complete_view_change(r);
	} else {
		send_replica(r, vr_leader_of(r, r->view), r->my_dvc, len);
	}
}

static void start_view_change(struct vr *r, uint64_t view)
{
	assert(view > r->view || r->status != EL_STATUS_VIEW_CHANGE);
	if (view >= EL_VIEW_LIMIT) {
		LOG_ERROR("view %llu would pass the view limit: staying in view %llu",
			  (unsigned long long)view, (unsigned long long)r->view);
		return;
	}
	/* everything the kernel acknowledged in this view must be in the log
	 * before the DoViewChange describes it */
	if (r->status == EL_STATUS_NORMAL)
		quiesce(r);
	LOG_INFO("view change: view %llu -> %llu (new leader %u), last op %llu, commit %llu",
		 (unsigned long long)r->view, (unsigned long long)view, vr_leader_of(r, view),
		 (unsigned long long)r->log.last, (unsigned long long)r->commit);
	r->view = view;
	r->status = EL_STATUS_VIEW_CHANGE;
	r->sent_dvc = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		free(r->dvc[i].buf);
		r->dvc[i].buf = NULL;
	}
	r->npend = 0;
	r->vc_started = r->now;
	r->last_vc_resend = r->now;
	/* randomised so that replicas do not keep starting view changes in step */
	r->vc_timeout_cur = r->o.vc_timeout_us * 3 / 4 + el_rand(&r->rng) % (r->o.vc_timeout_us / 2 + 1);
	publish(r);
	size_t len = build_empty(r, hdr(r, EL_MSG_START_VIEW_CHANGE));
	send_others(r, r->sbuf, len);
	if (am_leader(r) || r->f == 0)
		send_dvc(r);
}

/* Whether our normal view's leader is alive: then a replica that wants a
 * new view was cut off, not the leader (Raft's pre-vote, in VR terms), and
 * following it would end a healthy view. */
static int leader_alive(const struct vr *r)
{
	if (r->status != EL_STATUS_NORMAL)
		return 0;
	uint64_t recent = r->o.vc_timeout_us / 2;
	if (!am_leader(r))
		return r->now - r->last_heard < recent;
	uint32_t k = 0;
	for (uint32_t i = 0; i < r->n; i++)
		k += i != r->me && r->now - r->peer_heard[i] < recent;
	return k >= r->f;
}

/* Whether a StartViewChange/DoViewChange for a later view may move us there.
 * An honest replica's view grows by one per view-change timeout; a claim past
 * what timeouts can reach since we were last normal is a lie (one datagram
 * must not exhaust the view space), and while our leader is alive we stay. */
static int may_join_view(struct vr *r, const struct el_msg *m)
{
	if (m->h.view <= r->view)
		return 1;
	uint32_t j = m->h.replica;
	if (r->now - r->asked_last[j] > r->o.vc_timeout_us)
		r->asked_since[j] = r->now; /* it stopped asking in between */
	r->asked_last[j] = r->now;
	int alive = leader_alive(r);
	if (alive && r->now - r->asked_since[j] >= VR_STICKY_TIMEOUTS * r->o.vc_timeout_us) {
		LOG_INFO("replica %u has asked for view %llu for %llu ms: it cannot rejoin view %llu; following it", j,
			 (unsigned long long)m->h.view, (unsigned long long)(r->now - r->asked_since[j]) / 1000,
			 (unsigned long long)r->view);
	} else if (alive) {
		r->st.sticky++;
		if (r->st.sticky <= 10 || r->st.sticky % 1000 == 0)
			LOG_INFO("replica %u asks for view %llu; our leader %u of view %llu is alive: staying (%llu so far)",
				 m->h.replica, (unsigned long long)m->h.view, vr_leader_of(r, r->view),
				 (unsigned long long)r->view, (unsigned long long)r->st.sticky);
		return 0;
	}
	uint64_t step = r->o.vc_timeout_us * 3 / 4 + 1;
	uint64_t reach = r->view + VR_VIEW_SLACK + (r->now - r->normal_since) / step;
	if (m->h.view > reach) {
		r->st.view_jumps++;
		if (r->st.view_jumps <= 10 || r->st.view_jumps % 1000 == 0)
			LOG_WARN("dropped a view claim for view %llu from replica %u: timeouts reach view %llu at most; %llu so far",
				 (unsigned long long)m->h.view, m->h.replica, (unsigned long long)reach,
				 (unsigned long long)r->st.view_jumps);
		return 0;
	}
	return 1;
}

static void on_start_view_change(struct vr *r, const struct el_msg *m)
{
	if (m->h.view < r->view || !may_join_view(r, m))
		return;
	if (m->h.view > r->view)
		start_view_change(r, m->h.view);
	if (r->status != EL_STATUS_VIEW_CHANGE || m->h.view != r->view)
		return;
	r->svc_view[m->h.replica] = m->h.view;
	LOG_DEBUG("StartViewChange for view %llu from replica %u", (unsigned long long)m->h.view, m->h.replica);
	uint32_t count = 0;
	for (uint32_t i = 0; i < r->n; i++)
		if (i != r->me && r->svc_view[i] == r->view)
			count++;
	if (count >= r->f && !r->sent_dvc)
		send_dvc(r);
}

static void on_do_view_change(struct vr *r, const struct el_msg *m, const void *raw, size_t len)
{
	if (m->h.view < r->view || !may_join_view(r, m))
		return;
	if (m->h.view > r->view)
		start_view_change(r, m->h.view);
	if (r->status != EL_STATUS_VIEW_CHANGE || !am_leader(r) || m->h.view != r->view)
		return;
	record_dvc(r, m->h.replica, raw, len);
	LOG_DEBUG("DoViewChange for view %llu from replica %u (log view %llu, last op %llu, commit %llu)",
		  (unsigned long long)m->h.view, m->h.replica, (unsigned long long)m->h.client_id,
		  (unsigned long long)m->h.opnum, (unsigned long long)m->h.commit);
	try_complete_view_change(r);
}

/* Installs a log from a DoViewChange/StartView `w` (whose ops were logged in
 * normal view w->h.client_id). Our own ops are kept up to `keep`: all of
 * them if our log comes from the same normal view (then ours is a prefix
 * of w's), else only the committed ones. Returns -1 if w's entries do not
 * reach back to keep + 1. */
static int install_log(struct vr *r, const struct el_msg *w)
{
	uint64_t keep = r->last_normal_view == w->h.client_id ? r->log.last : r->commit;
	if (keep > w->h.opnum)
		keep = w->h.opnum;
	if (keep < r->commit)
		keep = r->commit; /* committed ops are never dropped */
	uint64_t first = w->n_entries ? w->first_op : w->h.opnum + 1;
	if (keep + 1 < first)
		return -1;
	el_log_truncate(&r->log, keep);
	if (append_entries(r, w) < 0)
		return -1;
	return 0;
}

static void try_complete_view_change(struct vr *r)
{
	if (r->status != EL_STATUS_VIEW_CHANGE || !am_leader(r))
		return;
	uint32_t count = 0;
	const struct el_msg *best = NULL;
	uint64_t max_commit = 0;
	uint32_t best_idx = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		const struct vr_dvc *d = &r->dvc[i];
		if (!d->buf || d->m.h.view != r->view)
			continue;
		count++;
		const struct el_msg *m = &d->m;
		if (!best || m->h.client_id > best->h.client_id ||
		    (m->h.client_id == best->h.client_id && m->h.opnum > best->h.opnum)) {
			best = m;
			best_idx = i;
		}
		if (m->h.commit > max_commit)
			max_commit = m->h.commit;
	}
	if (count < r->f + 1 || !best)
		return;
#ifdef EL_LAB_FAULTS
	/* labs/05-crash-hunt: a planted fault may leave `best` dangling */
	best = el_lab_winner(best);
	LOG_INFO("view %llu: the log of replica %u wins (normal view %llu, last op %llu)", (unsigned long long)r->view,
		 best_idx, (unsigned long long)best->h.client_id, (unsigned long long)best->h.opnum);
#endif
	if (best_idx != r->me && install_log(r, best) < 0) {
		/* we lag behind the winner's committed ops: fetch them first, the
		 * next chunk at once when the last one made progress */
		if (r->commit != r->get_state_at || r->now - r->last_get_state >= r->o.retransmit_us / 2) {
			r->last_get_state = r->now;
			r->get_state_at = r->commit;
			r->vc_fetch_from = best_idx;
			struct el_hdr h = hdr(r, EL_MSG_GET_STATE);
			h.opnum = r->commit;
			h.aux = EL_STATE_COMMITTED;
			size_t len = build_empty(r, h);
			LOG_INFO("view %llu: fetching committed ops after %llu from replica %u",
				 (unsigned long long)r->view, (unsigned long long)r->commit, best_idx);
			send_replica(r, best_idx, r->sbuf, len);
		}
		return;
	}
	enter_normal(r, r->view, "elected");
	commit_to(r, max_commit);
	size_t len = build_log_msg(r, EL_MSG_START_VIEW, r->view);
	if (len)
		send_others(r, r->sbuf, len);
	else
		LOG_WARN("view %llu: StartView too large; followers will catch up by state transfer",
			 (unsigned long long)r->view);
	r->last_sent = r->now;
}

static void on_start_view(struct vr *r, const struct el_msg *m)
{
	if (m->h.view < r->view || (m->h.view == r->view && r->status == EL_STATUS_NORMAL))
		return;
	if (m->h.replica != vr_leader_of(r, m->h.view) || m->h.replica == r->me)
		return;
	if (r->status == EL_STATUS_NORMAL)
		quiesce(r);
	int ok = install_log(r, m);
	if (ok < 0)
		el_log_truncate(&r->log, r->commit);
	enter_normal(r, m->h.view, "StartView");
	commit_to(r, m->h.commit);
	if (ok < 0)
		request_state(r, 1);
	else
		send_prepare_ok(r, 0);
}

/* ------------------------------------------------------------------ */
/* snapshots: the state itself, for ops no log holds any more          */

/* Sends the chunks of the snapshot we serve that lie in
 * [offset, offset + VR_SNAP_BURST) to replica `to`, building a new snapshot
 * first when the one asked for is not the one we hold (the receiver then
 * starts again at offset 0 of ours). */
static void serve_snapshot(struct vr *r, uint32_t to, uint64_t op, uint64_t offset)
{
	struct vr_snap_out *o = &r->sout;
	int stale = !o->buf || (op ? op != o->op : o->op != r->executed && r->now - o->made >= 100000);
	if (stale) {
		free(o->buf);
		o->len = el_snap_encode(&r->kv, &r->ct, &r->log, r->executed, r->last_normal_view, &o->buf);
		o->op = r->executed;
		o->sum = el_snap_sum(o->buf, o->len);
		o->made = r->now;
		r->st.snaps_served++;
		if (o->len > EL_SNAP_MAX_BYTES) {
			LOG_ERROR("snapshot of op %llu is %zu bytes, more than a replica accepts (%u): not sent",
				  (unsigned long long)o->op, o->len, EL_SNAP_MAX_BYTES);
			free(o->buf);
			o->buf = NULL;
			return;
		}
		LOG_INFO("snapshot: serving op %llu (%zu bytes, %zu keys, %zu clients, log to op %llu) to replica %u",
			 (unsigned long long)o->op, o->len, r->kv.used, r->ct.used, (unsigned long long)r->log.last, to);
	}
	if (stale || op != o->op)
		offset = 0;
	o->used = r->now;
	size_t chunk = r->o.max_prepare > EL_HDR_LEN + 64 ? r->o.max_prepare - EL_HDR_LEN : 64;
	for (uint64_t off = offset; off < o->len && off < offset + VR_SNAP_BURST; off += chunk) {
		struct el_hdr h = hdr(r, EL_MSG_SNAPSHOT_CHUNK);
		h.opnum = o->op;
		h.client_id = o->len;
		h.request_id = o->sum;
		h.aux = (uint32_t)off;
		struct el_builder b;
		el_build_start(&b, r->sbuf, sizeof(r->sbuf), &h);
		size_t n = o->len - off < chunk ? o->len - off : chunk;
		int rc = el_build_bytes(&b, o->buf + off, n);
		assert(rc == 0);
		send_replica(r, to, r->sbuf, el_build_finish(&b));
		r->st.snap_chunks_sent++;
	}
}

static void on_get_snapshot(struct vr *r, const struct el_msg *m)
{
	if (r->status == EL_STATUS_RECOVERING)
		return; /* it has no state to give */
	serve_snapshot(r, m->h.replica, m->h.opnum, m->h.aux);
}

static void snap_request(struct vr *r, uint32_t from, uint64_t op, uint64_t offset)
{
	struct el_hdr h = hdr(r, EL_MSG_GET_SNAPSHOT);
	h.opnum = op;
	h.aux = (uint32_t)offset;
	size_t len = build_empty(r, h);
	r->sin.last_ask = r->now;
	r->sin.burst_end = offset + VR_SNAP_BURST;
	send_replica(r, from, r->sbuf, len);
}

/* Whose chunks this replica takes now. */
static int snap_wanted(const struct vr *r, uint32_t from)
{
	switch (r->status) {
	case EL_STATUS_RECOVERING: return r->rec.fetching && from == r->rec.from;
	case EL_STATUS_NORMAL: return !am_leader(r) && from == vr_leader_of(r, r->view);
	default: return am_leader(r) && from == r->vc_fetch_from;
	}
}

static void recovery_round(struct vr *r, const char *why);

/* Whether a decoded snapshot may replace this replica's state; NULL if so. */
static const char *snap_unfit(const struct vr *r, const struct el_snap_meta *m)
{
	switch (r->status) {
	case EL_STATUS_RECOVERING:
		/* it must hold all the leader had when it answered */
		if (m->log_view != r->rec.view || m->last < r->rec.target)
			return "it is not the state the leader announced (a view change since?)";
		return NULL;
	case EL_STATUS_NORMAL:
		/* our log is a prefix of the leader's in this view: never shorten it
		 * (the kernel may have acknowledged its last ops) */
		if (m->op <= r->commit)
			return "we committed past it meanwhile";
		if (m->log_view == r->view ? m->last < r->log.last : m->op < r->log.last)
			return "it would drop ops this replica holds";
		return NULL;
	default:
		return m->op <= r->commit ? "we committed past it meanwhile" : NULL;
	}
}

static void snap_install(struct vr *r)
{
	struct vr_snap_in *in = &r->sin;
	in->active = 0;
	struct el_kv kv;
	struct el_ctable ct;
	struct el_log log;
	struct el_snap_meta meta;
	el_kv_init(&kv);
	el_ctable_init(&ct, r->ct.max);
	el_log_init(&log);
	const char *why = NULL;
	if (el_snap_sum(in->buf, in->len) != in->sum)
		why = "checksum mismatch";
	else if (el_snap_decode(in->buf, in->len, &kv, &ct, &log, &meta, &why) == 0)
		why = meta.op != in->op ? "its op is not the one its chunks named" : snap_unfit(r, &meta);
	free(in->buf);
	in->buf = NULL;
	if (why) {
		r->st.snaps_refused++;
		LOG_WARN("snapshot of op %llu from replica %u not installed: %s", (unsigned long long)in->op, in->from, why);
		el_kv_free(&kv);
		el_ctable_free(&ct);
		el_log_free(&log);
		if (r->status == EL_STATUS_RECOVERING)
			recovery_round(r, "the leader's snapshot did not fit");
		return;
	}
	el_kv_free(&r->kv);
	el_ctable_free(&r->ct);
	el_log_free(&r->log);
	r->kv = kv;
	r->ct = ct;
	r->log = log;
	r->commit = r->executed = meta.op;
	r->st.snaps_installed++;
	if (r->env.installed)
		r->env.installed(r->env.ctx, meta.op);
	LOG_INFO("snapshot: installed op %llu (%zu bytes, %u keys, %u clients, log to op %llu) from replica %u",
		 (unsigned long long)meta.op, in->len, meta.keys, meta.clients, (unsigned long long)meta.last, in->from);
	if (r->status == EL_STATUS_RECOVERING) {
		char how[48];
		snprintf(how, sizeof(how), "recovered from replica %u", in->from);
		r->st.recoveries++;
		enter_normal(r, r->rec.view, how);
		send_prepare_ok(r, EL_F_REPORT);
	} else if (r->status == EL_STATUS_NORMAL) {
		if (meta.log_view != r->view)
			el_log_truncate(&r->log, meta.op); /* another view's suffix: only what is committed */
		reply_progress(r);
		send_prepare_ok(r, 0);
	} else {
		/* a new leader takes only the committed state: the winning
		 * DoViewChange supplies the rest */
		el_log_truncate(&r->log, meta.op);
		r->vc_started = r->now;
		try_complete_view_change(r);
	}
}

static void on_snapshot_chunk(struct vr *r, const struct el_msg *m)
{
	struct vr_snap_in *in = &r->sin;
	uint32_t j = m->h.replica;
	if (!snap_wanted(r, j)) {
		/* late chunks of a transfer we gave up count here too */
		r->st.not_leader++;
		return;
	}
	int same = in->active && in->from == j && in->op == m->h.opnum && in->sum == m->h.request_id &&
		   in->total == m->h.client_id;
	if (!same) {
		/* a transfer starts at offset 0; a replica that is not recovering
		 * takes one only when it is behind it */
		if (m->h.aux != 0 || (r->status != EL_STATUS_RECOVERING && m->h.opnum <= r->commit))
			return;
		free(in->buf);
		memset(in, 0, sizeof(*in));
		in->active = 1;
		in->from = j;
		in->op = m->h.opnum;
		in->total = m->h.client_id;
		in->sum = m->h.request_id;
		in->started = r->now;
		in->burst_end = VR_SNAP_BURST;
	}
	if (m->h.aux != in->len)
		return; /* out of order: asked again from in->len */
	/* the decoder bounded offset + length by the total */
	in->buf = el_xrealloc(in->buf, in->len + m->payload_len);
	memcpy(in->buf + in->len, m->payload, m->payload_len);
	in->len += m->payload_len;
	in->last_progress = r->now;
	r->st.snap_bytes_in += m->payload_len;
	if (in->len == in->total)
		snap_install(r);
	else if (in->len >= in->burst_end)
		snap_request(r, j, in->op, in->len);
}

/* Asks again from where the transfer is when chunks stopped coming; gives
 * up after a while (the sender may be gone), and frees what we served. */
static void snap_tick(struct vr *r)
{
	struct vr_snap_in *in = &r->sin;
	if (in->active && r->now - in->last_progress >= 2 * r->o.vc_timeout_us) {
		LOG_WARN("snapshot of op %llu from replica %u: no chunk for %llu ms at %zu of %llu bytes; giving up",
			 (unsigned long long)in->op, in->from, (unsigned long long)(r->now - in->last_progress) / 1000, in->len,
			 (unsigned long long)in->total);
		free(in->buf);
		in->buf = NULL;
		in->active = 0;
	} else if (in->active && r->now - in->last_progress >= r->o.retransmit_us &&
		   r->now - in->last_ask >= r->o.retransmit_us) {
		snap_request(r, in->from, in->op, in->len);
	}
	if (r->sout.buf && r->now - r->sout.used >= VR_SNAP_FREE_US) {
		free(r->sout.buf);
		r->sout.buf = NULL;
	}
}

/* ------------------------------------------------------------------ */
/* recovery (VR Revisited 4.3)                                         */

/* Nothing anyone can have acknowledged: view 0, no op ever logged, no
 * state on its way. */
static int holds_nothing(const struct vr *r)
{
	return r->view == 0 && r->log.last == 0 && r->status != EL_STATUS_VIEW_CHANGE && !r->rec.fetching;
}

static void send_recovery(struct vr *r)
{
	struct el_hdr h = hdr(r, EL_MSG_RECOVERY);
	h.request_id = r->rec.nonce;
	size_t len = build_empty(r, h);
	r->rec.last_ask = r->now;
	send_others(r, r->sbuf, len);
}

/* The answers allow a decision: a new cluster, or a leader to fetch from. */
static void recovery_check(struct vr *r)
{
	struct vr_recovery *rc = &r->rec;
	if (r->status != EL_STATUS_RECOVERING || rc->fetching)
		return;
	uint32_t normal = 0, empty = 0;
	uint64_t vmax = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		if (!(rc->answer[i] & VR_RA_HEARD))
			continue;
		empty += !!(rc->answer[i] & EL_RR_EMPTY);
		if (rc->answer[i] & EL_RR_NORMAL) {
			normal++;
			if (rc->aview[i] > vmax)
				vmax = rc->aview[i];
		}
	}
	/* every other replica holds nothing: no op was ever acknowledged */
	if (empty == r->n - 1 && !r->ever_normal) {
		enter_normal(r, 0, "new cluster: every replica started without state");
		r->unconfirmed = am_leader(r) && r->f > 0;
		return;
	}
	uint32_t p = vr_leader_of(r, vmax);
	/* f+1 normal replicas, among them the latest view's leader (when that
	 * is us, the others change views first: they do when we ask them) */
	if (normal < r->f + 1 || p == r->me || !(rc->answer[p] & EL_RR_NORMAL) || rc->aview[p] != vmax)
		return;
	rc->fetching = 1;
	rc->from = p;
	rc->view = vmax;
	rc->target = rc->alast[p];
	rc->round_started = r->now;
	r->view = vmax;
	LOG_INFO("recovering: %u replicas are normal; replica %u leads view %llu (last op %llu): fetching its state", normal, p,
		 (unsigned long long)vmax, (unsigned long long)rc->target);
	publish(r);
	snap_request(r, p, 0, 0);
}

/* A new round with a fresh nonce: answers to an older Recovery (from before
 * a view change, say) no longer count. */
static void recovery_round(struct vr *r, const char *why)
{
	struct vr_recovery *rc = &r->rec;
	r->status = EL_STATUS_RECOVERING;
	rc->nonce = el_rand(&r->rng) | 1;
	rc->round_started = r->now;
	rc->fetching = 0;
	memset(rc->answer, 0, r->n);
	free(r->sin.buf);
	memset(&r->sin, 0, sizeof(r->sin));
	r->st.recovery_rounds++;
	if (r->st.recovery_rounds == 1)
		LOG_INFO("recovering: %s; asking the other %u replicas (nonce 0x%016llx)", why, r->n - 1,
			 (unsigned long long)rc->nonce);
	else
		LOG_DEBUG("recovering: %s; asking again (nonce 0x%016llx)", why, (unsigned long long)rc->nonce);
	publish(r);
	send_recovery(r);
	recovery_check(r);
}

/* Why recovery has not completed, from this round's answers. */
static void recovery_explain(struct vr *r)
{
	const struct vr_recovery *rc = &r->rec;
	char text[768];
	size_t at = 0;
	for (uint32_t i = 0; i < r->n && at < sizeof(text) - 80; i++) {
		if (i == r->me)
			continue;
		uint8_t a = rc->answer[i];
		const char *sep = at ? "; " : "";
		int k;
		if (!(a & VR_RA_HEARD))
			k = snprintf(text + at, sizeof(text) - at, "%sreplica %u: no answer", sep, i);
		else if (a & EL_RR_NORMAL)
			k = snprintf(text + at, sizeof(text) - at, "%sreplica %u: normal in view %llu (its leader: replica %u)", sep, i,
				     (unsigned long long)rc->aview[i], vr_leader_of(r, rc->aview[i]));
		else if (a & EL_RR_EMPTY)
			k = snprintf(text + at, sizeof(text) - at, "%sreplica %u: recovering too, holds nothing", sep, i);
		else
			k = snprintf(text + at, sizeof(text) - at, "%sreplica %u: not normal (view change or recovering, view %llu)",
				     sep, i, (unsigned long long)rc->aview[i]);
		at += (size_t)k;
	}
	if (rc->fetching)
		LOG_ERROR("recovering for %llu s: fetching the state of replica %u (view %llu): %zu of %llu bytes",
			  (unsigned long long)(r->now - rc->since) / 1000000, rc->from, (unsigned long long)rc->view, r->sin.len,
			  (unsigned long long)r->sin.total);
	else
		LOG_ERROR("recovering for %llu s and cannot complete: it needs %u replicas in normal status, among them the leader "
			  "of the latest view (or all %u holding nothing, for a new cluster); this replica takes part in nothing "
			  "until then. This round: %s",
			  (unsigned long long)(r->now - rc->since) / 1000000, r->f + 1, r->n - 1, text);
}

static void recovery_tick(struct vr *r)
{
	struct vr_recovery *rc = &r->rec;
	if (!rc->fetching) {
		if (r->now - rc->round_started >= 2 * r->o.vc_timeout_us)
			recovery_round(r, "not enough answers");
		else if (r->now - rc->last_ask >= r->o.heartbeat_us)
			send_recovery(r);
	} else {
		uint64_t progress = r->sin.active && r->sin.last_progress > rc->round_started ? r->sin.last_progress : rc->round_started;
		if (r->now - progress >= 2 * r->o.vc_timeout_us)
			recovery_round(r, "the leader stopped sending its state");
		else if (!r->sin.active && r->now - r->sin.last_ask >= r->o.retransmit_us)
			snap_request(r, rc->from, 0, 0);
	}
	if (r->status == EL_STATUS_RECOVERING && r->now - rc->since >= 5000000 && r->now - rc->last_warn >= 5000000) {
		rc->last_warn = r->now;
		recovery_explain(r);
	}
}

static void on_recovery(struct vr *r, const struct el_msg *m)
{
	/* changing views, or recovering with a state on its way: aux 0, which
	 * counts for nothing but tells the recovering replica why it waits */
	uint32_t aux = (r->status == EL_STATUS_NORMAL ? EL_RR_NORMAL : 0) | (holds_nothing(r) ? EL_RR_EMPTY : 0);
	struct el_hdr h = hdr(r, EL_MSG_RECOVERY_RESPONSE);
	h.request_id = m->h.request_id;
	h.aux = aux;
	send_replica(r, m->h.replica, r->sbuf, build_empty(r, h));
	if (r->status != EL_STATUS_NORMAL)
		return;
	if (am_leader(r)) {
		/* its acknowledgements were the old process's */
		r->q.acked[m->h.replica] = 0;
	} else if (m->h.replica == vr_leader_of(r, r->view) && !holds_nothing(r)) {
		/* our leader lost its state: it can neither lead nor recover
		 * until another replica leads (while nothing was ever logged it
		 * forms the new cluster with us instead) */
		LOG_INFO("leader %u restarted without state: changing views", m->h.replica);
		start_view_change(r, r->view + 1);
	}
}

static void on_recovery_response(struct vr *r, const struct el_msg *m)
{
	struct vr_recovery *rc = &r->rec;
	if (r->status != EL_STATUS_RECOVERING || m->h.request_id != rc->nonce)
		return;
	uint32_t j = m->h.replica;
	rc->answer[j] = (uint8_t)(VR_RA_HEARD | m->h.aux);
	rc->aview[j] = m->h.view;
	rc->alast[j] = m->h.opnum;
	recovery_check(r);
}

/* ------------------------------------------------------------------ */
/* entry points                                                       */

void vr_receive(struct vr *r, const void *buf, size_t len, const struct sockaddr_in *src, uint64_t now)
{
	struct el_msg m;
	r->now = now;
	int rc = el_msg_decode(buf, len, r->n, &m);
	if (rc != EL_OK) {
		r->st.malformed++;
		if (r->st.malformed <= 10 || r->st.malformed % 1000 == 0)
			LOG_WARN("dropped malformed packet (%zu bytes from %s:%u): %s; %llu so far", len,
				 src ? inet_ntoa(src->sin_addr) : "?", src ? ntohs(src->sin_port) : 0,
				 el_decode_strerror(rc), (unsigned long long)r->st.malformed);
		return;
	}
	/* replicas never send to themselves: such a datagram is forged */
	if (m.h.type != EL_MSG_REQUEST && m.h.replica == r->me) {
		r->st.malformed++;
		r->st.own_index++;
		return;
	}
	/* a recovering replica takes part in nothing but its recovery */
	if (r->status == EL_STATUS_RECOVERING && m.h.type != EL_MSG_RECOVERY && m.h.type != EL_MSG_RECOVERY_RESPONSE &&
	    m.h.type != EL_MSG_SNAPSHOT_CHUNK) {
		publish(r);
		return;
	}
	switch (m.h.type) {
	case EL_MSG_REQUEST:
		if (src)
			on_request(r, &m, src);
		break;
	case EL_MSG_PREPARE: on_prepare(r, &m); break;
	case EL_MSG_PREPARE_OK: on_prepare_ok(r, &m); break;
	case EL_MSG_COMMIT: on_commit(r, &m); break;
	case EL_MSG_START_VIEW_CHANGE: on_start_view_change(r, &m); break;
	case EL_MSG_DO_VIEW_CHANGE: on_do_view_change(r, &m, buf, len); break;
	case EL_MSG_START_VIEW: on_start_view(r, &m); break;
	case EL_MSG_GET_STATE: on_get_state(r, &m); break;
	case EL_MSG_NEW_STATE: on_new_state(r, &m); break;
	case EL_MSG_RECOVERY: on_recovery(r, &m); break;
	case EL_MSG_RECOVERY_RESPONSE: on_recovery_response(r, &m); break;
	case EL_MSG_GET_SNAPSHOT: on_get_snapshot(r, &m); break;
	case EL_MSG_SNAPSHOT_CHUNK: on_snapshot_chunk(r, &m); break;
	default: break; /* REPLY: not for replicas */
	}
	publish(r);
}

void vr_tick(struct vr *r, uint64_t now)
{
	r->now = now;
	snap_tick(r);
	if (r->status == EL_STATUS_RECOVERING) {
		recovery_tick(r);
	} else if (r->status == EL_STATUS_NORMAL && !am_leader(r)) {
		if (r->now - r->last_heard > r->vc_timeout_cur) {
			LOG_INFO("no word from leader %u for %llu ms", vr_leader_of(r, r->view),
				 (unsigned long long)(r->now - r->last_heard) / 1000);
			start_view_change(r, r->view + 1);
		} else if (r->now - r->last_report >= r->o.heartbeat_us) {
			/* where we are, for the leader's low-water mark: with the quorum
			 * prune it hears only f PrepareOKs per op, and not ours */
			r->last_report = r->now;
			send_prepare_ok(r, EL_F_REPORT);
		}
	} else if (r->status == EL_STATUS_VIEW_CHANGE) {
		if (r->now - r->vc_started > r->vc_timeout_cur) {
			start_view_change(r, r->view + 1);
		} else if (r->now - r->last_vc_resend >= r->o.heartbeat_us) {
			r->last_vc_resend = r->now;
			size_t len = build_empty(r, hdr(r, EL_MSG_START_VIEW_CHANGE));
			send_others(r, r->sbuf, len);
			if (r->sent_dvc && !am_leader(r))
				send_replica(r, vr_leader_of(r, r->view), r->my_dvc, r->my_dvc_len);
			try_complete_view_change(r);
		}
	} else if (am_leader(r)) {
		if (r->commit < r->log.last && r->now - r->last_retx >= r->o.retransmit_us) {
			if (r->commit == r->retx_commit) {
				/* no progress since the last check: resend what is unacked, to
				 * the followers that have not acked it; with the quorum prune
				 * on, individual acks are not seen: to every follower */
				uint8_t *only = el_xcalloc(r->n, 1);
				int prune = r->o.kernel_quorum && (kernel_enabled(r) & EL_FP_QUORUM);
				for (uint32_t i = 0; i < r->n; i++)
					only[i] = i != r->me && (prune || r->q.acked[i] < r->log.last);
				send_prepares(r, r->commit + 1, r->log.last, only);
				free(only);
			}
			r->retx_commit = r->commit;
			r->last_retx = r->now;
		}
		if (r->now - r->last_sent >= r->o.heartbeat_us) {
			size_t len = build_empty(r, hdr(r, EL_MSG_COMMIT));
			send_followers(r, r->sbuf, len);
		}
	}
	publish(r);
}

void vr_init(struct vr *r, const struct vr_opts *o, const struct vr_env *env, uint32_t n, uint32_t f,
	     uint32_t me, uint64_t seed, uint64_t now)
{
	memset(r, 0, sizeof(*r));
	r->o = *o;
	if (!r->o.window_bytes)
		r->o.window_bytes = VR_DEFAULT_WINDOW;
	if (!r->o.max_prepare)
		r->o.max_prepare = 1500 - 28;
	if (!r->o.batch)
		r->o.batch = 1;
	r->env = *env;
	r->n = n;
	r->f = f;
	r->me = me;
	el_log_init(&r->log);
	el_kv_init(&r->kv);
	el_ctable_init(&r->ct, o->max_clients);
	el_ctable_init(&r->addrs, o->max_clients);
	el_quorum_init(&r->q, n, f);
	el_quorum_reset(&r->q, 0);
	r->peer_commit = el_xcalloc(n, sizeof(*r->peer_commit));
	r->peer_heard = el_xcalloc(n, sizeof(*r->peer_heard));
	for (uint32_t i = 0; i < n; i++)
		r->peer_heard[i] = now;
	r->svc_view = el_xcalloc(n, sizeof(*r->svc_view));
	r->asked_since = el_xcalloc(n, sizeof(*r->asked_since));
	r->asked_last = el_xcalloc(n, sizeof(*r->asked_last));
	r->dvc = el_xcalloc(n, sizeof(*r->dvc));
	r->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	r->status = EL_STATUS_NORMAL;
	r->now = now;
	r->last_heard = now;
	r->normal_since = now;
	r->last_report = now;
	r->vc_timeout_cur = r->o.vc_timeout_us * 3 / 4 + el_rand(&r->rng) % (r->o.vc_timeout_us / 2 + 1);
	r->rec.answer = el_xcalloc(n, 1);
	r->rec.aview = el_xcalloc(n, sizeof(*r->rec.aview));
	r->rec.alast = el_xcalloc(n, sizeof(*r->rec.alast));
	r->rec.since = now;
	r->confirmed = el_xcalloc(n, 1);
	if (r->env.arm_reply)
		r->env.arm_reply(r->env.ctx, 0, 0);
	if (o->recover)
		recovery_round(r, "started without state");
	else
		r->ever_normal = 1;
	publish(r);
}

void vr_free(struct vr *r)
{
	for (uint32_t i = 0; i < r->n; i++)
		free(r->dvc[i].buf);
	for (size_t i = 0; i < r->nheld; i++)
		free(r->held[i].buf);
	free(r->held);
	free(r->dvc);
	free(r->svc_view);
	free(r->asked_since);
	free(r->asked_last);
	free(r->peer_commit);
	free(r->peer_heard);
	free(r->my_dvc);
	free(r->pend);
	free(r->confirmed);
	free(r->rec.answer);
	free(r->rec.aview);
	free(r->rec.alast);
	free(r->sin.buf);
	free(r->sout.buf);
	el_log_free(&r->log);
	el_kv_free(&r->kv);
	el_ctable_free(&r->ct);
	el_ctable_free(&r->addrs);
	el_quorum_free(&r->q);
}
