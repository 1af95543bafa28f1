/* SPDX-License-Identifier: MIT
 *
 * sim.c - a seeded simulation of N VR cores (vr.h) with the eBPF fast paths
 * modelled from the SAME rules the kernel runs (el_fastpath_rules.h): a
 * network that drops, duplicates and reorders; crashes of up to f replicas
 * (whose kernels go on acknowledging until their lease runs out); pauses;
 * fast paths switched on and off at run time; tiny quorum-slot tables so
 * slots collide; rings drained lazily so records wait while view changes
 * run; closed-loop clients. Every schedule is checked:
 *
 *   - committed prefixes agree (op k is the same request on every replica);
 *   - each replica commits 1, 2, 3, ... (commit numbers only rise);
 *   - an acknowledged op stays at the op number its reply named, with the
 *     result the committed order gives it;
 *   - real-time order: an op acknowledged before another was invoked is
 *     ordered before it;
 *   - after the network heals, the survivors commit every acknowledged op;
 *   - a replica that restarts without state (its kernel state fresh too)
 *     recovers, and the state a snapshot gave it is the committed order's.
 *
 * Restarts and permanent crashes together never leave more than f replicas
 * dead or recovering at once. `--no-recovery` restarts replicas the old,
 * unsafe way (normal in view 0, empty): the negative control that shows the
 * checks catch a replica that forgot what it acknowledged.
 *
 *   sim [--seeds N] [--first S] [--seed S] [--verbose] [--no-recovery]
 * Exit 0 when every schedule passed; a violation prints the seed and the
 * schedule's parameters, so `sim --seed S --verbose` replays it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/el_fastpath_rules.h"
#include "util.h"
#include "vr.h"

#define TICK_US 5000u
#define LEASE_US 50000u
#define SIM_MAX_N 7
#define MAX_CLIENTS 4
#define KEYS 3

static int verbose;
static int no_recovery;

/* ---- deterministic randomness ------------------------------------------- */

static uint64_t srng;
static uint64_t rnd(void) { return el_rand(&srng); }
static double unit(void) { return (double)(rnd() >> 11) / (double)(1ull << 53); }
static uint64_t between(uint64_t lo, uint64_t hi) { return lo + rnd() % (hi - lo + 1); }

/* ---- schedule parameters -------------------------------------------------- */

struct params {
	uint32_t n;
	double loss, dup;
	uint64_t delay_min, delay_max;
	uint32_t crashes;
	int broadcast, quorum, reply;
	int toggles;
	uint32_t slots;
	uint32_t clients;
	uint64_t duration;
	double drain_p;         /* chance a wakeup drains the ring before the datagram */
	int pause;
	int partitions;         /* times a random group is cut off from the rest */
	uint64_t vc_timeout;
	uint32_t batch;
	size_t max_prepare;
	int forge;              /* marked PrepareOKs that bypass the dispatcher
	                         * (IP options, fragments reassembled after XDP) */
	uint32_t restarts;      /* crashes followed by a start without state */
	uint64_t restart_delay_max;
	uint64_t grace;         /* low-water-mark grace (0: the default 10 s) */
	uint64_t keep_ops;      /* ops kept behind it (0: the default 256) */
	int bootstrap;          /* the cluster starts as processes do: recovering */
	uint64_t log_hold;      /* committed ops any log holds for others (0: the default) */
};

static void draw_params(struct params *p)
{
	static const uint32_t ns[] = { 3, 5, 7 };
	static const uint32_t slots[] = { 2, 4, 16, 1024 };
	memset(p, 0, sizeof(*p));
	p->n = ns[rnd() % 3];
	p->loss = unit() < 0.2 ? 0 : unit() * 0.12;
	p->dup = unit() * 0.05;
	p->delay_min = between(10, 200);
	p->delay_max = p->delay_min + between(0, 3000);
	p->crashes = (uint32_t)(rnd() % ((p->n - 1) / 2 + 1));
	p->broadcast = unit() < 0.5;
	p->quorum = unit() < 0.5;
	p->reply = unit() < 0.6;
	p->toggles = unit() < 0.3;
	p->slots = slots[rnd() % 4];
	p->clients = (uint32_t)between(1, MAX_CLIENTS);
	p->duration = between(300000, 1200000);
	p->drain_p = unit() < 0.3 ? 0 : unit();
	p->pause = unit() < 0.2;
	p->batch = unit() < 0.5 ? 1 : (uint32_t)between(2, 16);
	p->max_prepare = unit() < 0.3 ? 300 : 1472;
	p->partitions = unit() < 0.5 ? (int)between(1, 4) : 0;
	p->vc_timeout = unit() < 0.5 ? 400000 : between(30000, 200000);
	p->forge = unit() < 0.3;
	p->restarts = unit() < 0.5 ? (uint32_t)between(1, 4) : 0;
	p->restart_delay_max = unit() < 0.5 ? between(1000, 50000) : between(50000, 800000);
	p->grace = unit() < 0.4 ? between(20000, 300000) : 0;
	p->keep_ops = unit() < 0.5 ? between(1, 32) : 0;
	p->bootstrap = unit() < 0.3;
	/* drawn last: the seeds keep every parameter they had before it */
	p->log_hold = unit() < 0.4 ? between(2, 64) : 0;
}

/* ---- events --------------------------------------------------------------- */

enum ev_kind { EV_DELIVER, EV_TICK, EV_CLIENT, EV_CRASH, EV_TOGGLE, EV_PAUSE, EV_RESUME, EV_SPLIT, EV_HEAL, EV_RESTART };

struct event {
	uint64_t at, seq;
	enum ev_kind kind;
	uint32_t node;          /* replica, or client index for EV_CLIENT / replies */
	int to_client;
	uint8_t *buf;
	size_t len;
	uint64_t token;         /* EV_CLIENT: the client's timer generation;
	                         * EV_CRASH: restart after this many us (0: for good) */
};

static struct event *heap;
static size_t nheap, capheap;
static uint64_t evseq, now;

static int ev_less(const struct event *a, const struct event *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void push(struct event e)
{
	if (nheap == capheap) {
		capheap = capheap ? capheap * 2 : 1024;
		heap = el_xrealloc(heap, capheap * sizeof(*heap));
	}
	e.seq = evseq++;
	size_t i = nheap++;
	heap[i] = e;
	while (i && ev_less(&heap[i], &heap[(i - 1) / 2])) {
		struct event t = heap[i];
		heap[i] = heap[(i - 1) / 2];
		heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static struct event pop(void)
{
	struct event top = heap[0];
	heap[0] = heap[--nheap];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < nheap && ev_less(&heap[l], &heap[m]))
			m = l;
		if (r < nheap && ev_less(&heap[r], &heap[m]))
			m = r;
		if (m == i)
			break;
		struct event t = heap[i];
		heap[i] = heap[m];
		heap[m] = t;
		i = m;
	}
	return top;
}

/* ---- replicas and their kernels ------------------------------------------ */

struct record {
	uint8_t *buf;
	size_t len;
};

struct snode {
	uint32_t idx;
	struct vr core;
	int alive, paused;
	/* the kernel model: what the programs see and keep */
	uint64_t vs, lease, kcommit;
	struct el_fr_state fr;
	uint32_t enabled;
	uint64_t token;         /* el_config.quorum_token */
	struct el_qcount *qs;
	struct record *ring;
	size_t nring, capring;
	/* datagrams that reached a paused process */
	struct event *held;
	size_t nheld, capheld;
	uint64_t committed_last;
};

static struct params P;
/* what the schedules exercised, summed over all of them */
static uint64_t tot_kacks, tot_marks, tot_views, tot_quiesce_records, tot_crashed_acks, tot_restarts, tot_recoveries,
	tot_snapshots, tot_bootstraps, tot_catchups;
static struct snode nodes[SIM_MAX_N];
static uint32_t N, F;
static char violation[512];

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	if (violation[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(violation, sizeof(violation), fmt, ap);
	va_end(ap);
}

/* ---- the checker ----------------------------------------------------------- */

struct committed_op {
	uint64_t client_id, request_id;
	uint16_t len;
	uint8_t data[EL_MAX_OP_LEN];
	int set;
};
static struct committed_op *cmap;
static size_t cmap_cap;

struct acked {
	uint64_t client_id, request_id, opnum, invoke, complete;
	uint8_t result[EL_MAX_REPLY];
	size_t rlen;
};
static struct acked *acks;
static size_t nacks, capacks;

static void on_committed(struct snode *s, uint64_t opnum, const struct el_log_entry *e)
{
	if (!e) {
		fail("replica %u: committed op %" PRIu64 " it does not hold", s->idx, opnum);
		return;
	}
	if (opnum != s->committed_last + 1)
		fail("replica %u: committed op %" PRIu64 " after %" PRIu64 " (commits must go up by one)", s->idx, opnum, s->committed_last);
	s->committed_last = opnum;
	if (opnum >= cmap_cap) {
		size_t nc = cmap_cap ? cmap_cap : 4096;
		while (nc <= opnum)
			nc *= 2;
		cmap = el_xrealloc(cmap, nc * sizeof(*cmap));
		memset(cmap + cmap_cap, 0, (nc - cmap_cap) * sizeof(*cmap));
		cmap_cap = nc;
	}
	struct committed_op *c = &cmap[opnum];
	if (!c->set) {
		c->set = 1;
		c->client_id = e->client_id;
		c->request_id = e->request_id;
		c->len = e->len;
		memcpy(c->data, e->data, e->len);
	} else if (c->client_id != e->client_id || c->request_id != e->request_id || c->len != e->len ||
		   memcmp(c->data, e->data, e->len)) {
		fail("replicas disagree at op %" PRIu64 ": %" PRIu64 "/%" PRIu64 " vs %" PRIu64 "/%" PRIu64 " (replica %u)", opnum,
		     c->client_id, c->request_id, e->client_id, e->request_id, s->idx);
	}
}

/* ---- the network ------------------------------------------------------------ */

static int lossy_now;
static uint64_t heal_at;
/* a partition: replicas in `side` hear only each other (clients reach everyone) */
static uint32_t side;
static int split;
static uint32_t sender = ~0u;

static int cut(uint32_t from, uint32_t to)
{
	return split && from < N && to < N && (((side >> from) & 1) != ((side >> to) & 1));
}


static uint64_t delay(void)
{
	return between(P.delay_min, P.delay_max);
}

static void net_send(uint32_t to, int to_client, const void *buf, size_t len, int lossy)
{
	if (lossy && unit() < P.loss)
		return;
	if (!to_client && cut(sender, to))
		return;
	int copies = lossy && unit() < P.dup ? 2 : 1;
	for (int i = 0; i < copies; i++) {
		struct event e = { .at = now + delay(), .kind = EV_DELIVER, .node = to, .to_client = to_client, .len = len };
		e.buf = el_xmalloc(len);
		memcpy(e.buf, buf, len);
		push(e);
	}
}

static uint8_t hdr_type(const uint8_t *b) { return b[5]; }
static uint8_t hdr_flags(const uint8_t *b) { return b[6]; }
static uint8_t hdr_replica(const uint8_t *b) { return b[7]; }
static uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* The TC egress of `s`: arms quorum slots and fans marked frames out. */
static void egress(struct snode *s, uint32_t to, uint8_t *buf, size_t len)
{
	uint8_t type = hdr_type(buf);
	uint32_t leader = EL_VS_STATUS(s->vs) == EL_STATUS_NORMAL ? (uint32_t)(EL_VS_VIEW(s->vs) % N) : N;
	int fragmented = len > P.max_prepare;
	/* sometimes the send fails before TC (a full socket buffer): no arming */
	if (type == EL_MSG_PREPARE && leader == s->idx && (s->enabled & EL_FP_QUORUM) && !fragmented && unit() > 0.02)
		el_q_arm(&s->qs[ld64(buf + 16) % P.slots], ld64(buf + 8), ld64(buf + 16));
	if ((hdr_flags(buf) & EL_F_BCAST) && (type == EL_MSG_PREPARE || type == EL_MSG_COMMIT) && !fragmented &&
	    (s->enabled & EL_FP_BROADCAST) && leader == s->idx) {
		buf[6] &= (uint8_t)~EL_F_BCAST;
		for (uint32_t i = 0; i < N; i++)
			if (i != s->idx)
				net_send(i, 0, buf, len, lossy_now);
		return;
	}
	net_send(to, 0, buf, len, lossy_now);
}

static void e_send(void *ctx, uint32_t to, const void *buf, size_t len)
{
	uint8_t copy[EL_MAX_DGRAM];
	memcpy(copy, buf, len);
	egress(ctx, to, copy, len);
}

static void e_send_client(void *ctx, const struct sockaddr_in *to, const void *buf, size_t len)
{
	(void)ctx;
	net_send(ntohs(to->sin_port) - 20000, 1, buf, len, lossy_now);
}

static void e_publish(void *ctx, const struct vr_public *p)
{
	struct snode *s = ctx;
	s->vs = EL_VS(p->view, p->status);
	s->kcommit = p->commit;
}

static void drain(struct snode *s)
{
	/* records handed back may re-enter the core: take the list first */
	while (s->nring) {
		struct record r = s->ring[0];
		memmove(s->ring, s->ring + 1, (s->nring - 1) * sizeof(*s->ring));
		s->nring--;
		vr_kernel_record(&s->core, r.buf, r.len);
		free(r.buf);
	}
}

static void e_quiesce(void *ctx, uint64_t view)
{
	struct snode *s = ctx;
	s->vs = EL_VS(view, EL_STATUS_VIEW_CHANGE);
	tot_quiesce_records += s->nring;
	drain(s);
}

static void e_arm(void *ctx, uint64_t view, uint64_t last)
{
	struct snode *s = ctx;
	s->fr.view = view;
	s->fr.last_op = last;
}

static void e_progress(void *ctx, uint64_t last)
{
	struct snode *s = ctx;
	if (last > s->fr.last_op)
		s->fr.last_op = last;
}

static uint32_t e_enabled(void *ctx) { return ((struct snode *)ctx)->enabled; }
static uint64_t e_token(void *ctx) { return ((struct snode *)ctx)->token; }
static uint64_t tot_forged;

static void e_committed(void *ctx, uint64_t opnum, const struct el_log_entry *e) { on_committed(ctx, opnum, e); }
static void on_installed(struct snode *s, uint64_t op);
static void e_installed(void *ctx, uint64_t op) { on_installed(ctx, op); }

static struct vr_env node_env(struct snode *s)
{
	struct vr_env env = { .ctx = s, .send = e_send, .send_client = e_send_client, .committed = e_committed,
			      .installed = e_installed };
	if (P.broadcast || P.quorum || P.reply) {
		env.publish = e_publish;
		env.quiesce = e_quiesce;
		env.arm_reply = e_arm;
		env.reply_progress = e_progress;
		env.enabled = e_enabled;
		env.quorum_token = e_token;
	}
	return env;
}

/* The XDP side of `s` for one arriving datagram: 1 = hand it to the core. */
static int ingress(struct snode *s, uint8_t *buf, size_t len)
{
	if (len < EL_HDR_LEN || ld32(buf) != EL_MAGIC)
		return 1;
	uint8_t type = hdr_type(buf);
	if (type == EL_MSG_PREPARE_OK) {
		if (hdr_flags(buf) & EL_F_QUORUM)
			return 0; /* forged from the wire: the dispatcher drops it */
		if (!(s->enabled & EL_FP_QUORUM) || (hdr_flags(buf) & EL_F_REPORT))
			return 1;
		uint32_t leader = EL_VS_STATUS(s->vs) == EL_STATUS_NORMAL ? (uint32_t)(EL_VS_VIEW(s->vs) % N) : N;
		uint64_t view = ld64(buf + 8), opnum = ld64(buf + 16);
		uint32_t rep = hdr_replica(buf);
		if (leader != s->idx || view != EL_VS_VIEW(s->vs) || rep >= N || rep == s->idx)
			return 1;
		int v = el_q_count(&s->qs[opnum % P.slots], view, opnum, rep, F);
		if (v == EL_Q_COMPLETE) {
			buf[6] |= EL_F_QUORUM;
			memcpy(buf + 40, &s->token, 8); /* request_id: the proof */
			tot_marks++;
			return 1;
		}
		return v == EL_Q_NOT_ARMED;
	}
	if (type == EL_MSG_PREPARE && (s->enabled & EL_FP_REPLY) && len <= P.max_prepare) {
		struct el_fr_input in = {
			.view_status = s->vs, .lease_ns = s->lease, .now_ns = now, .fr_view = s->fr.view, .fr_last = s->fr.last_op,
			.my_idx = s->idx, .n = N, .p_view = ld64(buf + 8), .p_opnum = ld64(buf + 16), .p_sender = hdr_replica(buf),
			.p_aux = ld32(buf + 52), .p_len = (uint32_t)len, .max_len = 3472,
		};
		if (el_fr_decide(&in) != EL_FR_ACK)
			return 1;
		if (s->nring == s->capring) {
			s->capring = s->capring ? s->capring * 2 : 64;
			s->ring = el_xrealloc(s->ring, s->capring * sizeof(*s->ring));
		}
		struct record r = { .buf = el_xmalloc(len), .len = len };
		tot_kacks++;
		if (!s->alive)
			tot_crashed_acks++;
		memcpy(r.buf, buf, len);
		s->ring[s->nring++] = r;
		if (in.p_opnum > s->fr.last_op)
			s->fr.last_op = in.p_opnum;
		/* the PrepareOK the kernel sends back */
		struct el_hdr h;
		memset(&h, 0, sizeof(h));
		h.type = EL_MSG_PREPARE_OK;
		h.flags = EL_F_FROM_XDP;
		h.replica = (uint8_t)s->idx;
		h.view = in.p_view;
		h.opnum = in.p_opnum;
		h.commit = s->kcommit;
		uint8_t ok[EL_HDR_LEN];
		struct el_builder b;
		el_build_start(&b, ok, sizeof(ok), &h);
		size_t olen = el_build_finish(&b);
		net_send(in.p_sender, 0, ok, olen, lossy_now);
		return 0;
	}
	return 1;
}

/* ---- clients --------------------------------------------------------------- */

struct client {
	uint64_t id, rid;
	uint32_t leader;
	uint64_t invoke, token, tries;
	int waiting;
	uint8_t req[EL_HDR_LEN + EL_MAX_OP_LEN];
	size_t len;
};
static struct client clients[MAX_CLIENTS];
static int clients_stop;

static void client_send(struct client *c, int all)
{
	sender = ~0u;
	for (uint32_t i = 0; i < N; i++)
		if (all || i == c->leader)
			net_send(i, 0, c->req, c->len, lossy_now);
	c->token++;
	struct event e = { .at = now + 100000, .kind = EV_CLIENT, .node = (uint32_t)(c - clients), .token = c->token };
	push(e);
}

static void client_next(struct client *c)
{
	if (clients_stop) {
		c->waiting = 0;
		return;
	}
	c->rid++;
	uint8_t op[EL_MAX_OP_LEN];
	char key[8], val[40];
	snprintf(key, sizeof(key), "k%u", (unsigned)(rnd() % KEYS));
	int vl = snprintf(val, sizeof(val), "%" PRIx64 ".%" PRIu64 ";", c->id, c->rid);
	uint32_t kind = (uint32_t)(rnd() % 3);
	uint8_t code = kind == 0 ? EL_OP_PUT : kind == 1 ? EL_OP_APPEND : EL_OP_GET;
	size_t n = el_op_encode(op, sizeof(op), code, key, strlen(key), val, code == EL_OP_GET ? 0 : (size_t)vl);
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = EL_MSG_REQUEST;
	h.replica = EL_NO_REPLICA;
	h.client_id = c->id;
	h.request_id = c->rid;
	struct el_builder b;
	el_build_start(&b, c->req, sizeof(c->req), &h);
	el_build_bytes(&b, op, n);
	c->len = el_build_finish(&b);
	c->invoke = now;
	c->tries = 0;
	c->waiting = 1;
	client_send(c, 0);
}

static void client_reply(struct client *c, const uint8_t *buf, size_t len)
{
	struct el_msg m;
	if (el_msg_decode(buf, len, N, &m) != EL_OK || m.h.type != EL_MSG_REPLY || !c->waiting ||
	    m.h.client_id != c->id || m.h.request_id != c->rid)
		return;
	if (nacks == capacks) {
		capacks = capacks ? capacks * 2 : 1024;
		acks = el_xrealloc(acks, capacks * sizeof(*acks));
	}
	struct acked *a = &acks[nacks++];
	a->client_id = c->id;
	a->request_id = c->rid;
	a->opnum = m.h.opnum;
	a->invoke = c->invoke;
	a->complete = now;
	a->rlen = m.payload_len;
	memcpy(a->result, m.payload, m.payload_len);
	c->leader = (uint32_t)(m.h.view % N);
	c->waiting = 0;
	c->token++;
	/* think a little, then the next request */
	struct event e = { .at = now + between(0, 500), .kind = EV_CLIENT, .node = (uint32_t)(c - clients), .token = c->token };
	push(e);
}

static void client_timer(struct client *c, uint64_t token)
{
	if (token != c->token)
		return;
	if (!c->waiting) {
		client_next(c);
		return;
	}
	if (++c->tries > 40) {
		/* give up: the request stays indeterminate, the next one goes */
		client_next(c);
		return;
	}
	client_send(c, 1);
}

/* ---- one schedule ------------------------------------------------------------ */

static void deliver(struct snode *s, struct event *e)
{
	sender = s->idx; /* what the kernel or the core sends now comes from s */
	if (P.forge && s->alive && !s->paused && e->len == EL_HDR_LEN && hdr_type(e->buf) == EL_MSG_PREPARE_OK && unit() < 0.2) {
		/* a follower's genuine ack, marked EL_F_QUORUM on a path that got
		 * past the dispatcher (IP options, a datagram reassembled after
		 * XDP) but without the token: it must count as that one ack. (A
		 * spoofer that can forge acks can forge f of them: VR trusts its
		 * peers' identities, and so do we; the mark must not be cheaper.) */
		uint8_t f[EL_HDR_LEN];
		uint64_t guess = rnd();
		memcpy(f, e->buf, sizeof(f));
		f[6] |= EL_F_QUORUM;
		memcpy(f + 40, &guess, 8);
		struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(20000) };
		tot_forged++;
		vr_receive(&s->core, f, sizeof(f), &src, now);
		vr_flush(&s->core);
	}
	if (!ingress(s, e->buf, e->len))
		return;
	if (!s->alive)
		return;
	if (s->paused) {
		if (s->nheld == s->capheld) {
			s->capheld = s->capheld ? s->capheld * 2 : 64;
			s->held = el_xrealloc(s->held, s->capheld * sizeof(*s->held));
		}
		struct event h = *e;
		h.buf = el_xmalloc(e->len);
		memcpy(h.buf, e->buf, e->len);
		s->held[s->nheld++] = h;
		return;
	}
	sender = s->idx;
	if (unit() < P.drain_p)
		drain(s);
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(20000) };
	if (hdr_type(e->buf) == EL_MSG_REQUEST)
		src.sin_port = htons((uint16_t)(20000 + (ld64(e->buf + 32) - 1)));
	vr_receive(&s->core, e->buf, e->len, &src, now);
	vr_flush(&s->core);
}

static void tick(struct snode *s)
{
	if (!s->alive || s->paused)
		return;
	sender = s->idx;
	s->lease = now + LEASE_US;
	drain(s);
	vr_flush(&s->core);
	vr_tick(&s->core, now);
}

static int cmp_complete(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	uint64_t x = acks[*(const size_t *)a].complete, y = acks[*(const size_t *)b].complete;
	return x < y ? -1 : x > y;
}

static int cmp_invoke(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	uint64_t x = acks[*(const size_t *)a].invoke, y = acks[*(const size_t *)b].invoke;
	return x < y ? -1 : x > y;
}

/* The committed order replayed on a reference store (the replicas' rules:
 * sessions, duplicates), up to `upto` or the first op nobody committed;
 * returns how far it got. With res/rlen: each op's result. */
static uint64_t replay(uint64_t upto, struct el_kv *kv, struct el_ctable *ct, uint8_t *res, size_t *rlen)
{
	uint8_t scratch[EL_MAX_REPLY];
	uint64_t op = 1;
	for (; op <= upto; op++) {
		struct committed_op *c = op < cmap_cap ? &cmap[op] : NULL;
		if (!c || !c->set)
			break;
		if (c->request_id > 1 && !el_ctable_find(ct, c->client_id))
			continue; /* no session: refused */
		struct el_client *cl = el_ctable_upsert(ct, c->client_id);
		if (cl->request_id >= c->request_id)
			continue; /* the duplicate does not execute */
		struct el_op o;
		el_op_decode(c->data, c->len, &o);
		uint8_t *out = res ? res + op * EL_MAX_REPLY : scratch;
		size_t n = el_kv_apply(kv, &o, out);
		if (rlen)
			rlen[op] = n;
		el_client_set_reply(cl, c->request_id, op, out, n);
		el_ctable_touch(ct, cl);
	}
	return op - 1;
}


/* A snapshot brought ops 1..op: it must be the committed order's state. */
static void on_installed(struct snode *s, uint64_t op)
{
	s->committed_last = op;
	tot_snapshots++;
	/* not a recovery: a replica behind every log, or a new leader behind the winner's */
	tot_catchups += s->core.status != EL_STATUS_RECOVERING;
	struct el_kv kv;
	struct el_ctable ct;
	el_kv_init(&kv);
	el_ctable_init(&ct, s->core.ct.max);
	uint64_t got = replay(op, &kv, &ct, NULL, NULL);
	if (got < op)
		fail("replica %u installed a snapshot of op %" PRIu64 " but nobody committed op %" PRIu64, s->idx, op, got + 1);
	else if (el_kv_digest(&kv) != el_kv_digest(&s->core.kv) || ct.used != s->core.ct.used)
		fail("replica %u installed a snapshot of op %" PRIu64 " that is not the committed order's state", s->idx, op);
	el_kv_free(&kv);
	el_ctable_free(&ct);
}

/* The committed order, replayed on a reference store: each acknowledged op's
 * result must be what its op number gives it. */
static void check_results(uint64_t upto)
{
	struct el_kv kv;
	el_kv_init(&kv);
	uint8_t *expect_res = el_xcalloc(upto + 1, EL_MAX_REPLY);
	size_t *expect_len = el_xcalloc(upto + 1, sizeof(size_t));
	struct el_ctable ct;
	el_ctable_init(&ct, 64);
	replay(upto, &kv, &ct, expect_res, expect_len);
	for (size_t i = 0; i < nacks && !violation[0]; i++) {
		struct acked *a = &acks[i];
		if (a->opnum > upto || !cmap[a->opnum].set) {
			fail("acknowledged op %" PRIu64 "/%" PRIu64 " (op %" PRIu64 ") was never committed by a survivor", a->client_id,
			     a->request_id, a->opnum);
			break;
		}
		struct committed_op *c = &cmap[a->opnum];
		if (c->client_id != a->client_id || c->request_id != a->request_id)
			fail("acknowledged op %" PRIu64 "/%" PRIu64 " said op %" PRIu64 ", which holds %" PRIu64 "/%" PRIu64, a->client_id,
			     a->request_id, a->opnum, c->client_id, c->request_id);
		else if (expect_len[a->opnum] != a->rlen || memcmp(expect_res + a->opnum * EL_MAX_REPLY, a->result, a->rlen))
			fail("acknowledged op %" PRIu64 " got a result the committed order does not give it", a->opnum);
	}
	/* real time: acknowledged before another was invoked -> ordered before it.
	 * Sorted by completion and by invocation, with the highest op number of
	 * everything completed so far: O(n log n). */
	size_t *byc = el_xcalloc(nacks ? nacks : 1, sizeof(*byc)), *byi = el_xcalloc(nacks ? nacks : 1, sizeof(*byi));
	for (size_t i = 0; i < nacks; i++)
		byc[i] = byi[i] = i;
	qsort_r(byc, nacks, sizeof(*byc), cmp_complete, NULL);
	qsort_r(byi, nacks, sizeof(*byi), cmp_invoke, NULL);
	uint64_t maxop = 0;
	size_t maxat = 0, k = 0;
	for (size_t j = 0; j < nacks && !violation[0]; j++) {
		struct acked *b = &acks[byi[j]];
		while (k < nacks && acks[byc[k]].complete < b->invoke) {
			if (acks[byc[k]].opnum >= maxop) {
				maxop = acks[byc[k]].opnum;
				maxat = byc[k];
			}
			k++;
		}
		if (k && maxop >= b->opnum)
			fail("op %" PRIu64 " was acknowledged before op %" PRIu64 " was invoked but is ordered after it", acks[maxat].opnum,
			     b->opnum);
	}
	free(byc);
	free(byi);
	free(expect_res);
	free(expect_len);
	el_kv_free(&kv);
	el_ctable_free(&ct);
}

static struct vr_opts sim_opts;

/* dead, or recovering: what the fault budget (f) counts */
static uint32_t faulty(void)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < N; i++)
		k += !nodes[i].alive || nodes[i].core.status == EL_STATUS_RECOVERING;
	return k;
}

/* The process starts again without state; the lab gives its node fresh eBPF
 * state (electrode-lab restart re-attaches), so the kernel model starts over. */
static void restart_node(struct snode *s)
{
	tot_recoveries += s->core.st.recoveries;
	vr_free(&s->core);
	for (size_t k = 0; k < s->nring; k++)
		free(s->ring[k].buf);
	s->nring = 0;
	for (size_t k = 0; k < s->nheld; k++)
		free(s->held[k].buf);
	s->nheld = 0;
	s->paused = 0;
	memset(s->qs, 0, P.slots * sizeof(*s->qs));
	s->fr.view = s->fr.last_op = 0;
	s->vs = EL_VS(0, EL_STATUS_RECOVERING);
	s->kcommit = 0;
	s->lease = now + LEASE_US;
	s->committed_last = 0;
	s->alive = 1;
	struct vr_opts o = sim_opts;
	o.recover = !no_recovery;
	struct vr_env env = node_env(s);
	vr_init(&s->core, &o, &env, N, F, s->idx, rnd(), now);
	tot_restarts++;
	if (verbose)
		printf("  t=%" PRIu64 " replica %u restarts without state\n", now, s->idx);
}

static int run(uint64_t seed, uint64_t *ops_out)
{
	srng = seed * 0x9e3779b97f4a7c15ull + 1;
	draw_params(&P);
	N = P.n;
	F = (N - 1) / 2;
	violation[0] = 0;
	now = 1000000;
	nheap = 0;
	nacks = 0;
	clients_stop = 0;
	lossy_now = 1;
	if (cmap)
		memset(cmap, 0, cmap_cap * sizeof(*cmap));
	split = 0;
	struct vr_opts o = { .batch = P.batch, .heartbeat_us = P.vc_timeout >= 100000 ? 50000 : P.vc_timeout / 3, .vc_timeout_us = P.vc_timeout, .retransmit_us = 20000,
			     .max_prepare = P.max_prepare, .fast_broadcast = P.broadcast,
			     /* as the replica does: marks are weighed whenever the programs are there */
			     .kernel_quorum = P.broadcast || P.quorum || P.reply,
			     .fast_reply = P.reply, .max_clients = 64, .lwm_grace_us = P.grace, .keep_ops = P.keep_ops, .log_hold_ops = P.log_hold,
			     .recover = P.bootstrap,
			     /* as the replica does with the programs there; the small slot
			      * counts keep colliding, to show a collision costs only speed */
			     .window_ops = P.slots == EL_QSLOTS && (P.broadcast || P.quorum || P.reply) ? EL_QSLOTS - 1 : 0 };
	sim_opts = o;
	sim_opts.recover = 0;
	tot_bootstraps += P.bootstrap;
	for (uint32_t i = 0; i < N; i++) {
		struct snode *s = &nodes[i];
		memset(s, 0, sizeof(*s));
		s->idx = i;
		s->alive = 1;
		s->enabled = (P.broadcast ? EL_FP_BROADCAST : 0) | (P.quorum ? EL_FP_QUORUM : 0) | (P.reply ? EL_FP_REPLY : 0);
		s->qs = el_xcalloc(P.slots, sizeof(*s->qs));
		s->token = rnd() | 1;
		s->lease = now + LEASE_US;
		struct vr_env env = node_env(s);
		vr_init(&s->core, &o, &env, N, F, i, rnd(), now);
		struct event t = { .at = now + between(0, TICK_US), .kind = EV_TICK, .node = i };
		push(t);
	}
	for (uint32_t c = 0; c < P.clients; c++) {
		memset(&clients[c], 0, sizeof(clients[c]));
		clients[c].id = c + 1;
		struct event e = { .at = now + between(0, 10000), .kind = EV_CLIENT, .node = c, .token = 0 };
		push(e);
	}
	uint64_t end = now + P.duration;
	heal_at = end;
	for (uint32_t k = 0; k < P.crashes + P.restarts; k++) {
		struct event e = { .at = now + between(0, P.duration), .kind = EV_CRASH, .node = (uint32_t)(rnd() % N),
				   .token = k < P.crashes ? 0 : between(1000, P.restart_delay_max) };
		push(e);
	}
	if (P.toggles)
		for (int k = 0; k < 4; k++) {
			struct event e = { .at = now + between(0, P.duration), .kind = EV_TOGGLE, .node = (uint32_t)rnd() };
			push(e);
		}
	for (int k = 0; k < P.partitions; k++) {
		uint64_t at = now + between(0, P.duration);
		struct event a = { .at = at, .kind = EV_SPLIT, .node = (uint32_t)rnd() };
		struct event b = { .at = at + between(10000, 800000), .kind = EV_HEAL };
		push(a);
		push(b);
	}
	if (P.pause) {
		uint64_t at = now + between(0, P.duration);
		uint32_t who = (uint32_t)(rnd() % N);
		struct event a = { .at = at, .kind = EV_PAUSE, .node = who };
		struct event b = { .at = at + between(1000, 600000), .kind = EV_RESUME, .node = who };
		push(a);
		push(b);
	}
	/* run; at `end` the network heals and clients stop; 4 s to settle */
	uint64_t settle = end + 4000000;
	int healed = 0;
	while (nheap && !violation[0]) {
		struct event e = pop();
		now = e.at;
		if (!healed && now >= end) {
			healed = 1;
			lossy_now = 0;
			clients_stop = 1;
			split = 0;
			for (uint32_t i = 0; i < N; i++) {
				nodes[i].paused = 0;
				nodes[i].enabled = (P.broadcast ? EL_FP_BROADCAST : 0) | (P.quorum ? EL_FP_QUORUM : 0) | (P.reply ? EL_FP_REPLY : 0);
			}
		}
		if (now > settle) {
			free(e.buf);
			continue;
		}
		switch (e.kind) {
		case EV_DELIVER:
			if (e.to_client)
				client_reply(&clients[e.node], e.buf, e.len);
			else
				deliver(&nodes[e.node], &e);
			break;
		case EV_TICK: {
			tick(&nodes[e.node]);
			struct event t = { .at = now + TICK_US, .kind = EV_TICK, .node = e.node };
			push(t);
			break;
		}
		case EV_CLIENT:
			if (e.node < P.clients)
				client_timer(&clients[e.node], e.token);
			break;
		case EV_CRASH:
			/* never more than f dead or recovering at once; the kernels of
			 * dead ones keep acking until their lease ends */
			if (faulty() < F && nodes[e.node].alive && !healed) {
				nodes[e.node].alive = 0;
				if (e.token) {
					struct event r = { .at = now + e.token, .kind = EV_RESTART, .node = e.node };
					push(r);
				}
				if (verbose)
					printf("  t=%" PRIu64 " replica %u crashes%s\n", now, e.node, e.token ? " (restarts later)" : "");
			}
			break;
		case EV_RESTART:
			restart_node(&nodes[e.node]);
			break;
		case EV_TOGGLE:
			if (!healed) {
				uint32_t bit = 1u << (e.node % 3);
				for (uint32_t i = 0; i < N; i++)
					nodes[i].enabled ^= bit & ((P.broadcast ? EL_FP_BROADCAST : 0) | (P.quorum ? EL_FP_QUORUM : 0) | (P.reply ? EL_FP_REPLY : 0));
			}
			break;
		case EV_SPLIT:
			if (!healed) {
				side = e.node & ((1u << N) - 1);
				split = side != 0 && side != (1u << N) - 1;
			}
			break;
		case EV_HEAL:
			split = 0;
			break;
		case EV_PAUSE:
			if (!healed)
				nodes[e.node].paused = 1;
			break;
		case EV_RESUME: {
			struct snode *s = &nodes[e.node];
			s->paused = 0;
			for (size_t k = 0; k < s->nheld; k++) {
				if (s->alive)
					deliver(s, &s->held[k]);
				free(s->held[k].buf);
			}
			s->nheld = 0;
			break;
		}
		}
		free(e.buf);
	}
	while (nheap) {
		struct event e = pop();
		free(e.buf);
	}
	/* after healing, every survivor must have committed every acknowledged op */
	uint64_t max_acked = 0;
	for (size_t i = 0; i < nacks; i++)
		if (acks[i].opnum > max_acked)
			max_acked = acks[i].opnum;
	for (uint32_t i = 0; i < N && !violation[0]; i++)
		if (nodes[i].alive && nodes[i].committed_last < max_acked)
			fail("liveness: replica %u committed %" PRIu64 " ops after the network healed, %" PRIu64 " were acknowledged", i,
			     nodes[i].committed_last, max_acked);
	if (!violation[0])
		check_results(max_acked);
	*ops_out = max_acked;
	uint64_t vmax = 0;
	for (uint32_t i = 0; i < N; i++)
		if (nodes[i].core.view > vmax)
			vmax = nodes[i].core.view;
	tot_views += vmax;
	for (uint32_t i = 0; i < N; i++) {
		struct snode *s = &nodes[i];
		tot_recoveries += s->core.st.recoveries;
		vr_free(&s->core);
		for (size_t k = 0; k < s->nring; k++)
			free(s->ring[k].buf);
		free(s->ring);
		for (size_t k = 0; k < s->nheld; k++)
			free(s->held[k].buf);
		free(s->held);
		free(s->qs);
	}
	return violation[0] ? -1 : 0;
}

static void print_params(uint64_t seed)
{
	printf("seed %" PRIu64 ": n=%u loss=%.3f dup=%.3f delay=%" PRIu64 "..%" PRIu64 "us crashes=%u fast=%s%s%s toggles=%d slots=%u "
	       "clients=%u duration=%" PRIu64 "ms drain_p=%.2f pause=%d batch=%u max_prepare=%zu partitions=%d vc_timeout=%" PRIu64 "ms "
	       "restarts=%u (delay <= %" PRIu64 "ms) grace=%" PRIu64 "ms keep=%" PRIu64 " bootstrap=%d hold=%" PRIu64 "\n",
	       seed, P.n, P.loss, P.dup, P.delay_min, P.delay_max, P.crashes, P.broadcast ? "B" : "-", P.quorum ? "Q" : "-",
	       P.reply ? "R" : "-", P.toggles, P.slots, P.clients, P.duration / 1000, P.drain_p, P.pause, P.batch, P.max_prepare,
	       P.partitions, P.vc_timeout / 1000, P.restarts, P.restart_delay_max / 1000, P.grace / 1000, P.keep_ops, P.bootstrap, P.log_hold);
}

int main(int argc, char **argv)
{
	uint64_t seeds = 200, first = 1;
	int one = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
			seeds = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--first") && i + 1 < argc)
			first = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			first = strtoull(argv[++i], NULL, 10);
			one = 1;
		} else if (!strcmp(argv[i], "--verbose"))
			verbose = 1;
		else if (!strcmp(argv[i], "--no-recovery"))
			no_recovery = 1;
		else {
			fprintf(stderr, "usage: sim [--seeds N] [--first S] [--seed S] [--verbose] [--no-recovery]\n");
			return 2;
		}
	}
	el_log_threshold = verbose ? EL_LOG_INFO : EL_LOG_ERROR + 1;
	if (one)
		seeds = 1;
	uint64_t ops = 0, fast = 0, crashes = 0, failed = 0, with_restarts = 0;
	for (uint64_t s = first; s < first + seeds; s++) {
		uint64_t o = 0;
		int rc = run(s, &o);
		ops += o;
		fast += P.broadcast || P.quorum || P.reply;
		crashes += P.crashes;
		with_restarts += P.restarts > 0;
		if (rc || verbose)
			print_params(s);
		if (rc) {
			printf("  VIOLATION: %s\n  replay: sim --seed %" PRIu64 " --verbose\n", violation, s);
			failed++;
		}
	}
	printf("{\"kind\":\"electrode-sim\",\"schedules\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"with_fast_paths\":%" PRIu64
	       ",\"crashes\":%" PRIu64 ",\"acknowledged_ops\":%" PRIu64 ",\"view_changes\":%" PRIu64 ",\"kernel_acks\":%" PRIu64
	       ",\"kernel_acks_for_crashed\":%" PRIu64 ",\"quorum_marks\":%" PRIu64 ",\"records_drained_by_gate\":%" PRIu64
	       ",\"forged_marks\":%" PRIu64 ",\"with_restarts\":%" PRIu64 ",\"restarts\":%" PRIu64 ",\"recoveries\":%" PRIu64
	       ",\"snapshots_installed\":%" PRIu64 ",\"catch_up_snapshots\":%" PRIu64 ",\"bootstraps\":%" PRIu64 ",\"no_recovery\":%s}\n",
	       seeds, failed, fast, crashes, ops, tot_views, tot_kacks, tot_crashed_acks, tot_marks, tot_quiesce_records, tot_forged,
	       with_restarts, tot_restarts, tot_recoveries, tot_snapshots, tot_catchups, tot_bootstraps, no_recovery ? "true" : "false");
	free(cmap);
	free(acks);
	free(heap);
	return failed ? 1 : 0;
}
