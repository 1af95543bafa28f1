/* SPDX-License-Identifier: MIT
 *
 * vr.c - the Viewstamped Replication protocol (VR Revisited: normal case,
 * view change, state transfer, client table) over the key-value store.
 * Called from the single-threaded loop in replica.c. Semantics of every
 * message: native/PROTOCOL.md.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "replica.h"
#include "util.h"

static uint32_t leader_of(const struct replica *r, uint64_t view)
{
	return (uint32_t)(view % r->n);
}

static int am_leader(const struct replica *r)
{
	return leader_of(r, r->view) == r->me;
}

static void mark_prepare_end(struct replica *r, uint64_t opnum)
{
	if (!r->o.fast_quorum)
		return;
	size_t byte = (size_t)(opnum / 8);
	if (byte >= r->prep_end_bytes) {
		size_t nb = r->prep_end_bytes ? r->prep_end_bytes : 4096;
		while (nb <= byte)
			nb *= 2;
		r->prep_end = el_xrealloc(r->prep_end, nb);
		memset(r->prep_end + r->prep_end_bytes, 0, nb - r->prep_end_bytes);
		r->prep_end_bytes = nb;
	}
	r->prep_end[byte] |= (uint8_t)(1u << (opnum % 8));
}

static int is_prepare_end(const struct replica *r, uint64_t opnum)
{
	size_t byte = (size_t)(opnum / 8);
	return byte < r->prep_end_bytes && (r->prep_end[byte] >> (opnum % 8)) & 1u;
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

static void send_to(struct replica *r, const struct sockaddr_in *to, const void *buf, size_t len)
{
	if (sendto(r->sock, buf, len, 0, (const struct sockaddr *)to, sizeof(*to)) < 0 &&
	    errno != EAGAIN && errno != EWOULDBLOCK)
		LOG_DEBUG("sendto %s:%u: %s", inet_ntoa(to->sin_addr), ntohs(to->sin_port), strerror(errno));
}

static void send_replica(struct replica *r, uint32_t idx, const void *buf, size_t len)
{
	assert(idx < r->n && idx != r->me);
	send_to(r, &r->cl.addrs[idx], buf, len);
}

static void send_others(struct replica *r, const void *buf, size_t len)
{
	for (uint32_t i = 0; i < r->n; i++)
		if (i != r->me)
			send_replica(r, i, buf, len);
}

/* Prepare/Commit from the leader: with --fast-broadcast ONE copy marked
 * EL_F_BCAST goes to the lowest-index follower and the TC egress program
 * delivers the others. */
static void send_followers(struct replica *r, uint8_t *buf, size_t len)
{
	r->last_sent = r->now;
	if (r->o.fast_broadcast) {
		buf[6] |= EL_F_BCAST;
		uint32_t first = r->me == 0 ? 1 : 0;
		send_replica(r, first, buf, len);
		return;
	}
	send_others(r, buf, len);
}

static struct el_hdr hdr(const struct replica *r, uint8_t type)
{
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.replica = (uint8_t)r->me;
	h.view = r->view;
	h.commit = r->commit;
	h.opnum = r->log.last;
	return h;
}

/* Builds a message carrying log entries [from .. to], stopping early when
 * the datagram is full. Sets opnum to the last entry included and aux to
 * the count. Returns the datagram length. */
static size_t build_entries(struct replica *r, struct el_hdr h, uint64_t from, uint64_t to,
			    uint64_t *last_included)
{
	struct el_builder b;
	el_build_start(&b, r->sbuf, sizeof(r->sbuf), &h);
	uint64_t op = from;
	for (; op <= to; op++) {
		const struct el_log_entry *e = el_log_get(&r->log, op);
		assert(e);
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

static void send_prepare_ok(struct replica *r)
{
	struct el_hdr h = hdr(r, EL_MSG_PREPARE_OK);
	struct el_builder b;
	el_build_start(&b, r->sbuf, sizeof(r->sbuf), &h);
	size_t len = el_build_finish(&b);
	send_replica(r, leader_of(r, r->view), r->sbuf, len);
}

static void request_state(struct replica *r, int force)
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
	struct el_builder b;
	el_build_start(&b, r->sbuf, sizeof(r->sbuf), &h);
	size_t len = el_build_finish(&b);
	LOG_DEBUG("asking replica %u for ops after %llu", leader_of(r, r->view),
		  (unsigned long long)r->log.last);
	send_replica(r, leader_of(r, r->view), r->sbuf, len);
}

/* ------------------------------------------------------------------ */
/* eBPF control state                                                 */

void vr_sync_ctrl(struct replica *r)
{
	if (!r->fp)
		return;
	struct el_ctrl c = {
		.view = r->view,
		.last_op = r->log.last,
		.commit = r->commit,
		.status = r->status,
		.my_idx = r->me,
		.leader_idx = leader_of(r, r->view),
		.n_replicas = r->n,
		.f = r->f,
	};
	if (r->ctrl_valid && memcmp(&c, &r->ctrl_written, sizeof(c)) == 0)
		return;
	r->ctrl_written = c;
	r->ctrl_valid = 1;
	el_fp_write_ctrl(r->fp, &c);
}

/* Called on a view change or a state install: the kernel's fast-reply
 * progress must restart from what user space holds. */
void vr_reset_fast_reply(struct replica *r)
{
	vr_sync_ctrl(r);
	if (r->fp)
		el_fp_reset_fr(r->fp, r->view, r->log.last);
}

/* ------------------------------------------------------------------ */
/* execution                                                          */

static void send_reply(struct replica *r, const struct el_client *c)
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
	send_to(r, &c->addr, r->sbuf, len);
}

static void execute_one(struct replica *r, uint64_t opnum)
{
	const struct el_log_entry *e = el_log_get(&r->log, opnum);
	assert(e);
	struct el_op op;
	int rc = el_op_decode(e->data, e->len, &op);
	assert(rc == EL_OK); /* only validated ops enter the log */
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
	if (am_leader(r) && r->status == EL_STATUS_NORMAL && c->has_addr)
		send_reply(r, c);
	r->executed_ops++;
	if (r->o.crash_after && r->executed_ops >= r->o.crash_after)
		crash_on_purpose(r->executed_ops);
}

static void commit_to(struct replica *r, uint64_t upto)
{
	if (upto > r->log.last)
		upto = r->log.last;
	if (upto <= r->commit)
		return;
	r->commit = upto;
	while (r->executed < r->commit)
		execute_one(r, ++r->executed);
}

/* ------------------------------------------------------------------ */
/* normal case                                                        */

static int in_flight(struct replica *r, uint64_t cid, uint64_t rid)
{
	for (size_t i = 0; i < r->npend; i++)
		if (r->pend[i].client_id == cid && r->pend[i].request_id == rid)
			return 1;
	for (uint64_t op = r->commit + 1; op <= r->log.last; op++) {
		const struct el_log_entry *e = el_log_get(&r->log, op);
		if (e->client_id == cid && e->request_id == rid)
			return 1;
	}
	return 0;
}

static void on_request(struct replica *r, const struct el_msg *m, const struct sockaddr_in *src)
{
	struct el_client *c = el_ctable_upsert(&r->ct, m->h.client_id);
	c->addr = *src;
	c->has_addr = 1;
	if (r->status != EL_STATUS_NORMAL || !am_leader(r))
		return; /* only the leader of a normal view orders requests */
	if (m->h.request_id < c->request_id)
		return; /* older than what the client already saw */
	if (m->h.request_id == c->request_id) {
		send_reply(r, c); /* a retry of an executed request */
		return;
	}
	if (in_flight(r, m->h.client_id, m->h.request_id))
		return;
	if (r->npend == r->pend_cap) {
		r->pend_cap = r->pend_cap ? r->pend_cap * 2 : 64;
		r->pend = el_xrealloc(r->pend, r->pend_cap * sizeof(*r->pend));
	}
	struct pending *p = &r->pend[r->npend++];
	p->client_id = m->h.client_id;
	p->request_id = m->h.request_id;
	assert(m->payload_len <= EL_MAX_OP_LEN);
	p->len = (uint16_t)m->payload_len;
	memcpy(p->data, m->payload, m->payload_len);
}

/* Turns queued requests into Prepares of up to --batch ops each. */
void vr_flush_pending(struct replica *r)
{
	size_t i = 0;
	while (i < r->npend) {
		if (r->status != EL_STATUS_NORMAL || !am_leader(r))
			break;
		uint64_t from = r->log.last + 1;
		size_t k = 0;
		for (; k < r->o.batch && i < r->npend; k++, i++) {
			struct pending *p = &r->pend[i];
			el_log_append(&r->log, p->client_id, p->request_id, p->data, p->len);
		}
		uint64_t last;
		size_t len = build_entries(r, hdr(r, EL_MSG_PREPARE), from, r->log.last, &last);
		assert(last == r->log.last); /* a batch always fits: ops are small */
		if (r->f == 0) {
			commit_to(r, r->log.last);
		} else {
			mark_prepare_end(r, r->log.last);
			send_followers(r, r->sbuf, len);
		}
	}
	r->npend = 0;
}

static void enter_normal(struct replica *r, uint64_t view, const char *how)
{
	r->view = view;
	r->status = EL_STATUS_NORMAL;
	r->last_normal_view = view;
	r->last_heard = r->now;
	r->sent_dvc = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		free(r->dvc[i].buf);
		r->dvc[i].buf = NULL;
	}
	el_quorum_reset(&r->q, leader_of(r, view));
	if (r->prep_end)
		memset(r->prep_end, 0, r->prep_end_bytes); /* marks are per view */
	r->retx_commit = r->commit;
	r->last_retx = r->now;
	LOG_INFO("view %llu normal (%s), leader %u%s, last op %llu, commit %llu",
		 (unsigned long long)view, how, leader_of(r, view), am_leader(r) ? " (me)" : "",
		 (unsigned long long)r->log.last, (unsigned long long)r->commit);
	vr_reset_fast_reply(r);
}

/* We learned that `view` is running normally without us: keep only what is
 * surely committed and fetch the rest from its leader (VR Revisited 4.3). */
static void adopt_view(struct replica *r, uint64_t view)
{
	el_log_truncate(&r->log, r->commit);
	enter_normal(r, view, "joined late");
	request_state(r, 1);
}

/* Appends entries [m->first_op ..] that extend our log; entries we already
 * have are the same ops (same view, same leader) and are skipped. Returns
 * -1 on a gap. */
static int append_entries(struct replica *r, const struct el_msg *m)
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
static int accept_leader_msg(struct replica *r, const struct el_msg *m)
{
	if (m->h.view < r->view)
		return -1;
	if (m->h.replica != leader_of(r, m->h.view) || m->h.replica == r->me)
		return -1;
	if (m->h.view > r->view || r->status != EL_STATUS_NORMAL)
		adopt_view(r, m->h.view);
	r->last_heard = r->now;
	return 0;
}

static void on_prepare(struct replica *r, const struct el_msg *m, int from_kernel)
{
	if (accept_leader_msg(r, m))
		return;
	uint64_t before = r->log.last;
	if (append_entries(r, m) < 0) {
		request_state(r, 0);
		if (!from_kernel)
			send_prepare_ok(r); /* tells the leader where we are */
		return;
	}
	commit_to(r, m->h.commit);
	if (from_kernel) {
		r->stat_fr_records++;
		if (r->log.last == before && m->h.opnum > before)
			LOG_WARN("fast-reply record for ops %llu..%llu did not extend log at %llu",
				 (unsigned long long)m->first_op, (unsigned long long)m->h.opnum,
				 (unsigned long long)before);
		return; /* the XDP program already answered with a PrepareOK */
	}
	send_prepare_ok(r);
}

static void on_prepare_ok(struct replica *r, const struct el_msg *m)
{
	if (m->h.view != r->view || r->status != EL_STATUS_NORMAL || !am_leader(r))
		return;
	el_quorum_ack(&r->q, m->h.replica, m->h.opnum);
	uint64_t upto = el_quorum_committable(&r->q);
	/* --fast-quorum: the XDP program passes up only the PrepareOK that
	 * completed a quorum for a Prepare it saw leaving; acks are cumulative.
	 * PrepareOKs for other op numbers (a follower's catch-up ack) pass
	 * uncounted, so they only count as that one follower's ack. */
	if (r->o.fast_quorum && m->h.opnum <= r->log.last && m->h.opnum + FQ_WINDOW > r->log.last &&
	    is_prepare_end(r, m->h.opnum) && m->h.opnum > upto)
		upto = m->h.opnum;
	commit_to(r, upto);
}

static void on_commit(struct replica *r, const struct el_msg *m)
{
	if (accept_leader_msg(r, m))
		return;
	if (m->h.opnum > r->log.last)
		request_state(r, 0);
	commit_to(r, m->h.commit);
}

/* ------------------------------------------------------------------ */
/* state transfer                                                     */

static void on_get_state(struct replica *r, const struct el_msg *m)
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
	size_t len = build_entries(r, h, m->h.opnum + 1, upto, NULL);
	send_replica(r, m->h.replica, r->sbuf, len);
}

static void try_complete_view_change(struct replica *r);

static void on_new_state(struct replica *r, const struct el_msg *m)
{
	if (m->h.request_id == EL_STATE_COMMITTED) {
		if (r->status != EL_STATUS_VIEW_CHANGE || !am_leader(r))
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
	if (m->h.view != r->view || r->status != EL_STATUS_NORMAL || am_leader(r) ||
	    m->h.replica != leader_of(r, r->view))
		return;
	r->last_heard = r->now;
	uint64_t before = r->log.last;
	if (append_entries(r, m) < 0)
		return;
	commit_to(r, m->h.commit);
	if (r->log.last != before)
		vr_reset_fast_reply(r);
	send_prepare_ok(r);
	if (r->log.last < m->h.client_id)
		request_state(r, 1);
}

/* ------------------------------------------------------------------ */
/* view change                                                        */

static void record_dvc(struct replica *r, uint32_t idx, const void *buf, size_t len)
{
	struct dvc_rec *d = &r->dvc[idx];
	free(d->buf);
	d->buf = el_xmalloc(len);
	memcpy(d->buf, buf, len);
	d->len = len;
	int rc = el_msg_decode(d->buf, d->len, r->n, &d->m);
	assert(rc == EL_OK);
}

/* Builds our DoViewChange (or StartView) with the log suffix from a bit
 * before our commit point. Returns the length; 0 if even the uncommitted
 * suffix does not fit (then we must not claim a shorter log). */
static size_t build_log_msg(struct replica *r, uint8_t type, uint64_t log_view)
{
	struct el_hdr h = hdr(r, type);
	h.client_id = log_view;
	uint64_t from = r->commit + 1 > VC_EXTRA_OPS ? r->commit + 1 - VC_EXTRA_OPS : 1;
	for (;;) {
		uint64_t last;
		size_t len = build_entries(r, h, from, r->log.last, &last);
		if (last == r->log.last)
			return len;
		if (from > r->commit)
			return 0;
		/* drop committed extras first: only the uncommitted suffix is needed */
		uint64_t step = (r->log.last - last) + 1;
		from = from + step > r->commit + 1 ? r->commit + 1 : from + step;
	}
}

static void send_dvc(struct replica *r)
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
		  leader_of(r, r->view));
	r->sent_dvc = 1;
	free(r->my_dvc);
	r->my_dvc = el_xmalloc(len);
	memcpy(r->my_dvc, r->sbuf, len);
	r->my_dvc_len = len;
	if (am_leader(r)) {
		record_dvc(r, r->me, r->my_dvc, len);
		try_complete_view_change(r);
	} else {
		send_replica(r, leader_of(r, r->view), r->my_dvc, len);
	}
}

static void start_view_change(struct replica *r, uint64_t view)
{
	assert(view > r->view || r->status != EL_STATUS_VIEW_CHANGE);
	LOG_INFO("view change: view %llu -> %llu (new leader %u), last op %llu, commit %llu",
		 (unsigned long long)r->view, (unsigned long long)view, leader_of(r, view),
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
	r->vc_timeout_cur = r->o.vc_timeout_us * 3 / 4 +
			    el_rand(&r->rng) % (r->o.vc_timeout_us / 2 + 1);
	vr_reset_fast_reply(r);
	struct el_hdr h = hdr(r, EL_MSG_START_VIEW_CHANGE);
	struct el_builder b;
	el_build_start(&b, r->sbuf, sizeof(r->sbuf), &h);
	size_t len = el_build_finish(&b);
	send_others(r, r->sbuf, len);
	if (am_leader(r) || r->f == 0)
		send_dvc(r);
}

static void on_start_view_change(struct replica *r, const struct el_msg *m)
{
	if (m->h.view < r->view)
		return;
	if (m->h.view > r->view)
		start_view_change(r, m->h.view);
	if (r->status != EL_STATUS_VIEW_CHANGE)
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

static void on_do_view_change(struct replica *r, const struct el_msg *m, const void *raw, size_t len)
{
	if (m->h.view < r->view)
		return;
	if (m->h.view > r->view)
		start_view_change(r, m->h.view);
	if (r->status != EL_STATUS_VIEW_CHANGE || !am_leader(r))
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
static int install_log(struct replica *r, const struct el_msg *w)
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

static void try_complete_view_change(struct replica *r)
{
	if (r->status != EL_STATUS_VIEW_CHANGE || !am_leader(r))
		return;
	uint32_t count = 0;
	const struct el_msg *best = NULL;
	uint64_t max_commit = 0;
	uint32_t best_idx = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		const struct dvc_rec *d = &r->dvc[i];
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
	if (best_idx != r->me && install_log(r, best) < 0) {
		/* we lag behind the winner's committed ops: fetch them first, the
		 * next chunk at once when the last one made progress */
		if (r->commit != r->get_state_at || r->now - r->last_get_state >= r->o.retransmit_us / 2) {
			r->last_get_state = r->now;
			r->get_state_at = r->commit;
			struct el_hdr h = hdr(r, EL_MSG_GET_STATE);
			h.opnum = r->commit;
			h.aux = EL_STATE_COMMITTED;
			struct el_builder b;
			el_build_start(&b, r->sbuf, sizeof(r->sbuf), &h);
			size_t len = el_build_finish(&b);
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

static void on_start_view(struct replica *r, const struct el_msg *m)
{
	if (m->h.view < r->view || (m->h.view == r->view && r->status == EL_STATUS_NORMAL))
		return;
	if (m->h.replica != leader_of(r, m->h.view) || m->h.replica == r->me)
		return;
	int ok = install_log(r, m);
	if (ok < 0)
		el_log_truncate(&r->log, r->commit);
	enter_normal(r, m->h.view, "StartView");
	commit_to(r, m->h.commit);
	if (ok < 0)
		request_state(r, 1);
	else
		send_prepare_ok(r);
}

/* ------------------------------------------------------------------ */
/* dispatch                                                           */

void vr_handle(struct replica *r, const void *buf, size_t len, const struct sockaddr_in *src,
		   int from_kernel)
{
	struct el_msg m;
	int rc = el_msg_decode(buf, len, r->n, &m);
	if (rc != EL_OK) {
		r->stat_malformed++;
		if (r->stat_malformed <= 10 || r->stat_malformed % 1000 == 0)
			LOG_WARN("dropped malformed packet (%zu bytes from %s:%u): %s; %llu so far", len,
				 src ? inet_ntoa(src->sin_addr) : "ring", src ? ntohs(src->sin_port) : 0,
				 el_decode_strerror(rc), (unsigned long long)r->stat_malformed);
		return;
	}
	if (from_kernel && m.h.type != EL_MSG_PREPARE) {
		r->stat_malformed++;
		return;
	}
	switch (m.h.type) {
	case EL_MSG_REQUEST:
		if (src)
			on_request(r, &m, src);
		break;
	case EL_MSG_PREPARE: on_prepare(r, &m, from_kernel); break;
	case EL_MSG_PREPARE_OK: on_prepare_ok(r, &m); break;
	case EL_MSG_COMMIT: on_commit(r, &m); break;
	case EL_MSG_START_VIEW_CHANGE: on_start_view_change(r, &m); break;
	case EL_MSG_DO_VIEW_CHANGE: on_do_view_change(r, &m, buf, len); break;
	case EL_MSG_START_VIEW: on_start_view(r, &m); break;
	case EL_MSG_GET_STATE: on_get_state(r, &m); break;
	case EL_MSG_NEW_STATE: on_new_state(r, &m); break;
	default: break; /* REPLY: not for replicas */
	}
	vr_sync_ctrl(r);
}

void vr_on_tick(struct replica *r)
{
	if (r->status == EL_STATUS_NORMAL && !am_leader(r)) {
		if (r->now - r->last_heard > r->vc_timeout_cur) {
			LOG_INFO("no word from leader %u for %llu ms", leader_of(r, r->view),
				 (unsigned long long)(r->now - r->last_heard) / 1000);
			start_view_change(r, r->view + 1);
		}
	} else if (r->status == EL_STATUS_VIEW_CHANGE) {
		if (r->now - r->vc_started > r->vc_timeout_cur) {
			start_view_change(r, r->view + 1);
		} else if (r->now - r->last_vc_resend >= r->o.heartbeat_us) {
			r->last_vc_resend = r->now;
			struct el_hdr h = hdr(r, EL_MSG_START_VIEW_CHANGE);
			struct el_builder b;
			el_build_start(&b, r->sbuf, sizeof(r->sbuf), &h);
			size_t len = el_build_finish(&b);
			send_others(r, r->sbuf, len);
			if (r->sent_dvc && !am_leader(r))
				send_replica(r, leader_of(r, r->view), r->my_dvc, r->my_dvc_len);
			try_complete_view_change(r);
		}
	} else if (am_leader(r)) {
		if (r->commit < r->log.last && r->now - r->last_retx >= r->o.retransmit_us) {
			if (r->commit == r->retx_commit) {
				/* no progress since the last check: resend what is unacked */
				uint64_t last;
				size_t len = build_entries(r, hdr(r, EL_MSG_PREPARE), r->commit + 1,
							   r->log.last, &last);
				mark_prepare_end(r, last);
				for (uint32_t i = 0; i < r->n; i++)
					if (i != r->me && (r->o.fast_quorum || r->q.acked[i] < r->log.last))
						send_replica(r, i, r->sbuf, len);
				r->last_sent = r->now;
			}
			r->retx_commit = r->commit;
			r->last_retx = r->now;
		}
		if (r->now - r->last_sent >= r->o.heartbeat_us) {
			struct el_hdr h = hdr(r, EL_MSG_COMMIT);
			struct el_builder b;
			el_build_start(&b, r->sbuf, sizeof(r->sbuf), &h);
			size_t len = el_build_finish(&b);
			send_followers(r, r->sbuf, len);
		}
	}
	vr_sync_ctrl(r);
}

