/* SPDX-License-Identifier: MIT
 *
 * fuzz_vr.c - libFuzzer target for the replica's whole message handler: a
 * cluster of VR cores (vr.h) in one process whose inputs are a structured
 * script the fuzzer mutates: raw datagrams, well-formed headers with made-up
 * fields and entry lists, client requests, ticks, fast-reply ring records,
 * deliveries of what the cores sent each other (so hostile datagrams land
 * in the middle of real view changes and state transfers), restarts without
 * state (recovery), and snapshot chunks: real snapshots whole or mutated,
 * lying checksums and totals, out of order.
 *
 * Whatever the input: no crash, no sanitizer report, and each core's local
 * invariants hold (commit <= last op, executed == commit, the log keeps what
 * was not executed, views below the limit, a known status). Forged messages
 * may make replicas disagree (VR does not defend against lies); they must
 * never make one abort.
 *
 *   make -C native fuzz FUZZ_SECONDS=600
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"
#include "util.h"
#include "vr.h"

#define MAXN 7
#define QCAP 512

struct qmsg {
	uint32_t to;
	size_t len;
	uint8_t buf[EL_MAX_DGRAM];
};

static struct vr cores[MAXN];
static uint32_t n;
static struct qmsg *q;
static size_t nq;
static uint64_t now;
static uint32_t enabled;

static void e_send(void *ctx, uint32_t to, const void *buf, size_t len)
{
	(void)ctx;
	if (nq == QCAP)
		return; /* the network drops when it is full */
	q[nq].to = to;
	q[nq].len = len;
	memcpy(q[nq].buf, buf, len);
	nq++;
}
static void e_send_client(void *ctx, const struct sockaddr_in *to, const void *buf, size_t len)
{
	(void)ctx;
	(void)to;
	(void)buf;
	(void)len;
}
static void e_publish(void *ctx, const struct vr_public *p) { (void)ctx; (void)p; }
static void e_quiesce(void *ctx, uint64_t view) { (void)ctx; (void)view; }
static void e_arm(void *ctx, uint64_t view, uint64_t last) { (void)ctx; (void)view; (void)last; }
static void e_progress(void *ctx, uint64_t last) { (void)ctx; (void)last; }
static uint32_t e_enabled(void *ctx) { (void)ctx; return enabled; }
/* a fixed token: libFuzzer's comparison tracing can find it, so the path
 * that trusts a genuine mark is fuzzed too */
static uint64_t e_token(void *ctx) { (void)ctx; return 0x1122334455667788ull; }

static void check(const struct vr *r)
{
	if (r->commit > r->log.last || r->executed != r->commit || r->log.first > r->executed + 1 ||
	    r->view >= EL_VIEW_LIMIT || r->status > EL_STATUS_RECOVERING || r->me >= r->n) {
		fprintf(stderr, "invariant broken on replica %u: view %llu status %u first %llu last %llu commit %llu executed %llu\n",
			r->me, (unsigned long long)r->view, r->status, (unsigned long long)r->log.first,
			(unsigned long long)r->log.last, (unsigned long long)r->commit, (unsigned long long)r->executed);
		abort();
	}
}

struct in {
	const uint8_t *p;
	size_t left;
};
static uint32_t take(struct in *in, unsigned bytes)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < bytes; i++) {
		v = v << 8 | (in->left ? *in->p : 0);
		if (in->left) {
			in->p++;
			in->left--;
		}
	}
	return v;
}

static struct sockaddr_in client(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(40000) };
	a.sin_addr.s_addr = htonl(0x7f000001);
	return a;
}

/* A header with made-up fields, and (for entry types) a valid entry list. */
static size_t build_msg(struct in *in, uint8_t *buf)
{
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = (uint8_t)(1 + take(in, 1) % EL_MSG_TYPE_MAX);
	h.replica = (uint8_t)(take(in, 1) % (n + 1)); /* sometimes out of range */
	h.flags = (uint8_t)take(in, 1);
	uint32_t big = take(in, 1);
	h.view = big & 0x80 ? (uint64_t)take(in, 4) << 32 | take(in, 4) : take(in, 1);
	h.opnum = big & 0x40 ? (uint64_t)take(in, 4) << 32 | take(in, 4) : take(in, 2);
	h.commit = big & 0x20 ? (uint64_t)take(in, 4) << 32 | take(in, 4) : take(in, 2);
	h.client_id = take(in, 2);
	h.request_id = take(in, 2);
	h.aux = take(in, 1) % 4;
	if (h.type == EL_MSG_REQUEST)
		h.replica = EL_NO_REPLICA;
	struct el_builder b;
	el_build_start(&b, buf, EL_MAX_DGRAM, &h);
	uint32_t count = 0;
	if (el_type_has_entries(h.type)) {
		count = take(in, 1) % 6;
		for (uint32_t i = 0; i < count; i++) {
			uint8_t op[EL_MAX_OP_LEN];
			char key[4] = { 'k', (char)('a' + take(in, 1) % 4), 0, 0 };
			char val[64];
			size_t vl = take(in, 1) % sizeof(val);
			memset(val, 'v', vl);
			size_t ol = el_op_encode(op, sizeof(op), (uint8_t)(1 + take(in, 1) % 3), key, 2, val, 0);
			if (op[0] != EL_OP_GET)
				ol = el_op_encode(op, sizeof(op), op[0], key, 2, val, vl);
			el_build_entry(&b, 1 + take(in, 1), 1 + take(in, 2), op, (uint16_t)ol);
		}
		el_build_set_aux(&b, count);
		if (take(in, 1) & 1) /* keep the opnum/aux relation valid most of the time */
			el_build_set_opnum(&b, h.opnum < count ? count : h.opnum);
	} else if (h.type == EL_MSG_REQUEST) {
		uint8_t op[EL_MAX_OP_LEN];
		size_t ol = el_op_encode(op, sizeof(op), EL_OP_PUT, "kk", 2, "v", 1);
		el_build_bytes(&b, op, ol);
	}
	return el_build_finish(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	if (!once) {
		once = 1;
		el_log_threshold = EL_LOG_ERROR + 1;
		q = calloc(QCAP, sizeof(*q));
	}
	struct in in = { data, size };
	uint32_t cfg = take(&in, 1);
	n = 3 + 2 * (cfg % 3);
	enabled = (cfg >> 2) & 7;
	struct vr_opts o = { .batch = 1 + (cfg >> 5) % 8, .heartbeat_us = 50000, .vc_timeout_us = 400000,
			     .retransmit_us = 20000, .max_prepare = (cfg & 0x80) ? 300 : 1472, .max_clients = 16,
			     .fast_broadcast = 1, .kernel_quorum = (cfg >> 3) & 1, .fast_reply = (cfg >> 4) & 1 };
	struct vr_env env = { .send = e_send, .send_client = e_send_client, .publish = e_publish, .quiesce = e_quiesce,
			      .arm_reply = e_arm, .reply_progress = e_progress, .enabled = e_enabled,
			      .quorum_token = e_token };
	now = 1000000;
	nq = 0;
	/* half the inputs start as processes do: recovering, forming a cluster */
	struct vr_opts o_start = o;
	o_start.recover = take(&in, 1) & 1;
	for (uint32_t i = 0; i < n; i++)
		vr_init(&cores[i], &o_start, &env, n, (n - 1) / 2, i, 77 + i, now);
	uint8_t buf[EL_MAX_DGRAM];
	struct sockaddr_in src = client();
	for (int steps = 0; in.left && steps < 400; steps++) {
		uint32_t kind = take(&in, 1) % 9;
		uint32_t to = take(&in, 1) % n;
		struct vr *r = &cores[to];
		switch (kind) {
		case 0: { /* raw bytes */
			size_t len = take(&in, 1) * 2;
			if (len > in.left)
				len = in.left;
			memcpy(buf, in.p, len);
			in.p += len;
			in.left -= len;
			vr_receive(r, buf, len, &src, now);
			break;
		}
		case 1: /* a header with made-up fields */
			vr_receive(r, buf, build_msg(&in, buf), &src, now);
			break;
		case 2: { /* a client request to whoever */
			struct el_hdr h;
			memset(&h, 0, sizeof(h));
			h.type = EL_MSG_REQUEST;
			h.replica = EL_NO_REPLICA;
			h.client_id = 1 + take(&in, 1) % 40;
			h.request_id = 1 + take(&in, 1);
			uint8_t op[EL_MAX_OP_LEN];
			char key[3] = { 'k', (char)('a' + take(&in, 1) % 4), 0 };
			size_t ol = el_op_encode(op, sizeof(op), (uint8_t)(1 + take(&in, 1) % 3), key, 2, NULL, 0);
			if (op[0] != EL_OP_GET)
				ol = el_op_encode(op, sizeof(op), op[0], key, 2, "val", 3);
			struct el_builder b;
			el_build_start(&b, buf, sizeof(buf), &h);
			el_build_bytes(&b, op, ol);
			vr_receive(r, buf, el_build_finish(&b), &src, now);
			vr_flush(r);
			break;
		}
		case 3: /* time passes */
			now += (uint64_t)take(&in, 2) * 1000;
			for (uint32_t i = 0; i < n; i++)
				vr_tick(&cores[i], now);
			break;
		case 4: { /* the network delivers (some of) what the cores sent */
			size_t k = 1 + take(&in, 1) % 64;
			for (size_t i = 0; i < k && nq; i++) {
				struct qmsg *m = &q[0];
				memcpy(buf, m->buf, m->len);
				uint32_t dst = m->to;
				size_t len = m->len;
				memmove(q, q + 1, (nq - 1) * sizeof(*q));
				nq--;
				vr_receive(&cores[dst], buf, len, &src, now);
				vr_flush(&cores[dst]);
			}
			break;
		}
		case 5: /* a fast-reply record (well-formed or not) */
			vr_kernel_record(r, buf, build_msg(&in, buf));
			break;
		case 6: /* the kernel's switches flip */
			enabled = take(&in, 1) & 7;
			break;
		case 7: { /* a replica restarts without state */
			struct vr_opts ro = o;
			ro.recover = 1;
			vr_free(r);
			vr_init(r, &ro, &env, n, (n - 1) / 2, to, 91 + to + now, now);
			break;
		}
		case 8: { /* a snapshot in chunks: another core's state, maybe mutated */
			const struct vr *src_core = &cores[take(&in, 1) % n];
			uint8_t *snap;
			size_t slen = el_snap_encode(&src_core->kv, &src_core->ct, &src_core->log, src_core->executed,
						     src_core->last_normal_view, &snap);
			uint32_t flips = take(&in, 1) % 4;
			for (uint32_t f = 0; f < flips && slen; f++)
				snap[take(&in, 2) % slen] ^= (uint8_t)take(&in, 1);
			uint32_t mode = take(&in, 1);
			uint64_t sum = el_snap_sum(snap, slen) ^ (mode & 1 ? take(&in, 1) : 0);
			uint64_t total = mode & 2 ? slen + take(&in, 2) : slen;
			size_t chunk = 64 + take(&in, 1) * 8;
			struct el_hdr h;
			memset(&h, 0, sizeof(h));
			h.type = EL_MSG_SNAPSHOT_CHUNK;
			h.replica = (uint8_t)(take(&in, 1) % n);
			h.view = src_core->view;
			h.opnum = src_core->executed ? src_core->executed : 1;
			h.client_id = total;
			h.request_id = sum;
			for (size_t off = 0; off < slen; off += chunk) {
				size_t part = slen - off < chunk ? slen - off : chunk;
				h.aux = (uint32_t)((mode & 4) && off ? off - 1 : off); /* sometimes out of order */
				struct el_builder b;
				el_build_start(&b, buf, sizeof(buf), &h);
				el_build_bytes(&b, snap + off, part);
				vr_receive(r, buf, el_build_finish(&b), &src, now);
			}
			free(snap);
			break;
		}
		}
		for (uint32_t i = 0; i < n; i++)
			check(&cores[i]);
	}
	for (uint32_t i = 0; i < n; i++)
		vr_free(&cores[i]);
	return 0;
}
