/* SPDX-License-Identifier: MIT
 * Unit tests for the codec, the log, the client table, the KV store, the
 * quorum tracker and the config parser. Built and run under ASan+UBSan by
 * `make -C native test`. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "config.h"
#include "store.h"
#include "util.h"
#include "wire.h"

int h_failed_checks;

static uint8_t buf[EL_MAX_DGRAM];

static struct el_hdr mkhdr(uint8_t type, uint8_t replica)
{
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.replica = replica;
	h.view = 7;
	h.opnum = 0;
	h.commit = 3;
	return h;
}

static size_t op_bytes(uint8_t *p, uint8_t op, const char *key, const char *val)
{
	return el_op_encode(p, EL_MAX_OP_LEN, op, key, strlen(key), val, val ? strlen(val) : 0);
}

/* A Prepare with ops first..first+count-1. */
static size_t mk_prepare(uint64_t first, uint32_t count)
{
	struct el_hdr h = mkhdr(EL_MSG_PREPARE, 0);
	struct el_builder b;
	el_build_start(&b, buf, sizeof(buf), &h);
	for (uint32_t i = 0; i < count; i++) {
		uint8_t op[EL_MAX_OP_LEN];
		char key[16];
		snprintf(key, sizeof(key), "k%u", i);
		size_t n = op_bytes(op, EL_OP_PUT, key, "value");
		el_build_entry(&b, 100 + i, 1 + i, op, (uint16_t)n);
	}
	el_build_set_opnum(&b, first + count - 1);
	el_build_set_aux(&b, count);
	return el_build_finish(&b);
}

static size_t mk_request(uint64_t cid, uint64_t rid, uint8_t opc, const char *key, const char *val)
{
	struct el_hdr h = mkhdr(EL_MSG_REQUEST, EL_NO_REPLICA);
	h.client_id = cid;
	h.request_id = rid;
	struct el_builder b;
	el_build_start(&b, buf, sizeof(buf), &h);
	uint8_t op[EL_MAX_OP_LEN];
	size_t n = op_bytes(op, opc, key, val);
	el_build_bytes(&b, op, n);
	return el_build_finish(&b);
}

static size_t mk_empty(uint8_t type, uint8_t replica, uint32_t aux)
{
	struct el_hdr h = mkhdr(type, replica);
	h.aux = aux;
	struct el_builder b;
	el_build_start(&b, buf, sizeof(buf), &h);
	return el_build_finish(&b);
}

static void test_op_codec(void)
{
	uint8_t p[EL_MAX_OP_LEN];
	struct el_op op;
	size_t n = op_bytes(p, EL_OP_APPEND, "key1", "abc");
	CHECK_EQ(n, EL_OP_HDR_LEN + 4 + 3);
	CHECK_EQ(el_op_decode(p, n, &op), EL_OK);
	CHECK_EQ(op.op, EL_OP_APPEND);
	CHECK(op.key_len == 4 && memcmp(op.key, "key1", 4) == 0);
	CHECK(op.val_len == 3 && memcmp(op.val, "abc", 3) == 0);
	/* every truncation and every extension is rejected */
	for (size_t k = 0; k < n; k++)
		CHECK(el_op_decode(p, k, &op) != EL_OK);
	CHECK(el_op_decode(p, n + 1, &op) != EL_OK);
	/* bad op codes, empty key, get with a value, oversize */
	uint8_t q[EL_MAX_OP_LEN + 8];
	memcpy(q, p, n);
	q[0] = 0;
	CHECK(el_op_decode(q, n, &op) != EL_OK);
	q[0] = EL_OP_MAX + 1;
	CHECK(el_op_decode(q, n, &op) != EL_OK);
	memcpy(q, p, n);
	q[0] = EL_OP_GET;
	CHECK(el_op_decode(q, n, &op) != EL_OK);
	memcpy(q, p, n);
	q[1] = 0;
	CHECK(el_op_decode(q, n, &op) != EL_OK);
	q[1] = EL_MAX_KEY + 1;
	CHECK(el_op_decode(q, n, &op) != EL_OK);
	CHECK_EQ(el_op_encode(p, sizeof(p), EL_OP_GET, "k", 1, "v", 1), 0);
	CHECK_EQ(el_op_encode(p, sizeof(p), EL_OP_PUT, "", 0, "v", 1), 0);
	CHECK_EQ(el_op_encode(p, 5, EL_OP_PUT, "key", 3, "v", 1), 0);
	char big[EL_MAX_VAL + 1];
	memset(big, 'x', sizeof(big));
	CHECK_EQ(el_op_encode(p, sizeof(p), EL_OP_PUT, "k", 1, big, sizeof(big)), 0);
	CHECK(el_op_encode(p, sizeof(p), EL_OP_PUT, "k", 1, big, EL_MAX_VAL) > 0);
}

static void test_msg_roundtrip(void)
{
	struct el_msg m;
	size_t n = mk_request(5, 9, EL_OP_PUT, "a", "b");
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_OK);
	CHECK_EQ(m.h.type, EL_MSG_REQUEST);
	CHECK_EQ(m.h.client_id, 5);
	CHECK_EQ(m.h.request_id, 9);
	CHECK_EQ(m.h.view, 7);
	CHECK_EQ(m.h.commit, 3);
	CHECK_EQ(m.payload_len, n - EL_HDR_LEN);
	CHECK_EQ(buf[0], 'E');
	CHECK_EQ(buf[3], 'B'); /* magic reads "ELAB" on the wire */

	n = mk_prepare(11, 5);
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_OK);
	CHECK_EQ(m.n_entries, 5);
	CHECK_EQ(m.first_op, 11);
	CHECK_EQ(m.h.opnum, 15);
	struct el_entry_iter it;
	struct el_entry_ref e;
	el_entry_iter_init(&it, &m);
	uint32_t i = 0;
	while (el_entry_next(&it, &e)) {
		CHECK_EQ(e.client_id, 100 + i);
		CHECK_EQ(e.request_id, 1 + i);
		struct el_op op;
		CHECK_EQ(el_op_decode(e.data, e.len, &op), EL_OK);
		i++;
	}
	CHECK_EQ(i, 5);

	for (uint8_t t = EL_MSG_PREPARE_OK; t <= EL_MSG_START_VIEW_CHANGE; t++) {
		n = mk_empty(t, 2, 0);
		CHECK_EQ(n, EL_HDR_LEN);
		CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_OK);
	}
	n = mk_empty(EL_MSG_GET_STATE, 1, EL_STATE_COMMITTED);
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_OK);
	/* empty DoViewChange / StartView / NewState (aux 0) are valid */
	n = mk_empty(EL_MSG_DO_VIEW_CHANGE, 1, 0);
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_OK);
	CHECK_EQ(m.n_entries, 0);
}

static void test_msg_rejects(void)
{
	struct el_msg m;
	size_t n;

	n = mk_prepare(1, 3);
	/* every strict prefix of a valid datagram is rejected */
	for (size_t k = 0; k < n; k++)
		CHECK(el_msg_decode(buf, k, 3, &m) != EL_OK);
	CHECK_EQ(el_msg_decode(buf, 10, 3, &m), EL_ERR_SHORT);

	uint8_t save[EL_MAX_DGRAM];
	memcpy(save, buf, n);
#define MUT(stmt, want)                                               \
	do {                                                          \
		memcpy(buf, save, n);                                 \
		stmt;                                                 \
		CHECK_EQ(el_msg_decode(buf, n, 3, &m), want);         \
	} while (0)
	MUT(buf[0] ^= 1, EL_ERR_MAGIC);
	MUT(buf[4] = 2, EL_ERR_VERSION);
	MUT(buf[5] = 0, EL_ERR_TYPE);
	MUT(buf[5] = EL_MSG_TYPE_MAX + 1, EL_ERR_TYPE);
	MUT(buf[7] = 3, EL_ERR_REPLICA);        /* index == n */
	MUT(buf[7] = EL_NO_REPLICA, EL_ERR_REPLICA);
	MUT(buf[48] += 1, EL_ERR_LENGTH);        /* payload_len too big */
	MUT(buf[48] -= 1, EL_ERR_LENGTH);        /* payload_len too small */
	MUT(buf[52] = 2, EL_ERR_COUNT);          /* aux != entries */
	MUT(buf[52] = 4, EL_ERR_COUNT);
	MUT((buf[16] = 2, buf[17] = 0), EL_ERR_COUNT); /* opnum < count */
	MUT(buf[EL_HDR_LEN + EL_ENTRY_HDR_LEN] = 9, EL_ERR_PAYLOAD); /* bad op in entry */
	MUT(memset(buf + EL_HDR_LEN, 0, 8), EL_ERR_PAYLOAD);          /* client id 0 */
	MUT(buf[EL_HDR_LEN + 16] += 1, EL_ERR_PAYLOAD);               /* entry len wrong */
#undef MUT
	/* a Prepare with no ops */
	n = mk_empty(EL_MSG_PREPARE, 0, 0);
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_ERR_COUNT);
	/* payload where none is allowed */
	for (uint8_t t = EL_MSG_PREPARE_OK; t <= EL_MSG_START_VIEW_CHANGE; t++) {
		struct el_hdr h = mkhdr(t, 0);
		struct el_builder b;
		el_build_start(&b, buf, sizeof(buf), &h);
		el_build_bytes(&b, "x", 1);
		n = el_build_finish(&b);
		CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_ERR_PAYLOAD);
	}
	n = mk_empty(EL_MSG_GET_STATE, 0, 7);
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_ERR_PAYLOAD);
	/* a request from a "replica", with id 0, or with a bad op */
	n = mk_request(1, 1, EL_OP_PUT, "k", "v");
	buf[7] = 0;
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_ERR_REPLICA);
	n = mk_request(0, 1, EL_OP_PUT, "k", "v");
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_ERR_PAYLOAD);
	n = mk_request(1, 0, EL_OP_PUT, "k", "v");
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_ERR_PAYLOAD);
	n = mk_request(1, 1, EL_OP_PUT, "k", "v");
	buf[EL_HDR_LEN] = 0;
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_ERR_PAYLOAD);
	/* a reply larger than any result */
	struct el_hdr h = mkhdr(EL_MSG_REPLY, 0);
	struct el_builder b;
	el_build_start(&b, buf, sizeof(buf), &h);
	static uint8_t junk[EL_MAX_REPLY + 1];
	el_build_bytes(&b, junk, sizeof(junk));
	n = el_build_finish(&b);
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_ERR_PAYLOAD);
	/* NewState with an unknown mode */
	h = mkhdr(EL_MSG_NEW_STATE, 0);
	h.request_id = 5;
	el_build_start(&b, buf, sizeof(buf), &h);
	n = el_build_finish(&b);
	CHECK_EQ(el_msg_decode(buf, n, 3, &m), EL_ERR_PAYLOAD);
	/* the builder refuses what does not fit */
	uint8_t small[EL_HDR_LEN + 10];
	h = mkhdr(EL_MSG_PREPARE, 0);
	el_build_start(&b, small, sizeof(small), &h);
	CHECK(el_build_entry(&b, 1, 1, "xxxxxxxxxxxx", 12) < 0);
	CHECK_EQ(b.len, EL_HDR_LEN);
}

/* Random bytes and random mutations of valid messages: decode must never
 * crash (ASan/UBSan watch), and whatever passes must iterate cleanly. */
static void test_fuzz(void)
{
	uint64_t rng = 12345;
	static uint8_t f[4096];
	struct el_msg m;
	long accepted = 0;
	for (int iter = 0; iter < 200000; iter++) {
		size_t n;
		if (iter % 2 == 0) {
			n = el_rand(&rng) % sizeof(f);
			for (size_t i = 0; i < n; i++)
				f[i] = (uint8_t)el_rand(&rng);
			if (iter % 4 == 0 && n >= EL_HDR_LEN) { /* plausible header */
				uint32_t magic = EL_MAGIC, pl = (uint32_t)(n - EL_HDR_LEN);
				memcpy(f, &magic, 4);
				f[4] = EL_VERSION;
				f[5] = (uint8_t)(1 + el_rand(&rng) % EL_MSG_TYPE_MAX);
				memcpy(f + 48, &pl, 4);
			}
		} else {
			n = mk_prepare(1 + el_rand(&rng) % 100, 1 + (uint32_t)(el_rand(&rng) % 8));
			if (n > sizeof(f))
				continue;
			memcpy(f, buf, n);
			int flips = 1 + (int)(el_rand(&rng) % 4);
			for (int k = 0; k < flips; k++)
				f[el_rand(&rng) % n] ^= (uint8_t)(1u << (el_rand(&rng) % 8));
			if (el_rand(&rng) % 4 == 0)
				n = el_rand(&rng) % (n + 1);
		}
		if (el_msg_decode(f, n, 1 + (uint32_t)(el_rand(&rng) % 15), &m) != EL_OK)
			continue;
		accepted++;
		if (el_type_has_entries(m.h.type)) {
			struct el_entry_iter it;
			struct el_entry_ref e;
			uint32_t count = 0;
			el_entry_iter_init(&it, &m);
			while (el_entry_next(&it, &e)) {
				struct el_op op;
				CHECK_EQ(el_op_decode(e.data, e.len, &op), EL_OK);
				count++;
			}
			CHECK_EQ(count, m.n_entries);
		}
	}
	CHECK(accepted > 0); /* the mutations do leave some valid messages */
}

static void test_log(void)
{
	struct el_log l;
	el_log_init(&l);
	CHECK(el_log_get(&l, 0) == NULL);
	CHECK(el_log_get(&l, 1) == NULL);
	for (uint64_t i = 1; i <= 100000; i++) {
		char d[16];
		int n = snprintf(d, sizeof(d), "op%llu", (unsigned long long)i);
		CHECK_EQ(el_log_append(&l, 1, i, d, (uint16_t)n), i);
	}
	CHECK_EQ(l.last, 100000);
	CHECK(l.cap >= 100000);
	const struct el_log_entry *e = el_log_get(&l, 77777);
	CHECK(e && e->request_id == 77777 && memcmp(e->data, "op77777", 7) == 0);
	CHECK(el_log_get(&l, 100001) == NULL);
	el_log_truncate(&l, 50);
	CHECK_EQ(l.last, 50);
	CHECK(el_log_get(&l, 51) == NULL);
	el_log_replace(&l, 50, 9, 99, "new", 3);
	e = el_log_get(&l, 50);
	CHECK(e && e->client_id == 9 && e->request_id == 99 && e->len == 3);
	CHECK_EQ(el_log_append(&l, 2, 2, "x", 1), 51);
	el_log_truncate(&l, 100); /* no-op beyond the end */
	CHECK_EQ(l.last, 51);
	el_log_free(&l);
}

/* A log that grew while a replica was behind shrinks back once the ops are
 * forgotten (before: the ring stayed at its high-water size for good), and a
 * wrapped ring keeps every entry in order across the shrink. */
static void test_log_shrinks(void)
{
	struct el_log l;
	el_log_init(&l);
	char d[16];
	for (uint64_t i = 1; i <= 70000; i++) {
		int n = snprintf(d, sizeof(d), "op%llu", (unsigned long long)i);
		el_log_append(&l, 1, i, d, (uint16_t)n);
	}
	CHECK_EQ(l.cap, 131072);
	el_log_forget(&l, 69000); /* 1,000 held */
	CHECK(l.cap < 131072);
	CHECK(l.cap >= 1000 && l.cap <= 4096);
	/* wrap the smaller ring, then shrink again through the wrap */
	for (uint64_t i = 70001; i <= 73000; i++) {
		int n = snprintf(d, sizeof(d), "op%llu", (unsigned long long)i);
		el_log_append(&l, 1, i, d, (uint16_t)n);
		if (i % 100 == 0)
			el_log_forget(&l, i - 900);
	}
	el_log_forget(&l, 72800);
	CHECK_EQ(l.cap, EL_LOG_MIN_CAP);
	CHECK_EQ(l.first, 72801);
	for (uint64_t op = 72801; op <= 73000; op++) {
		const struct el_log_entry *e = el_log_get(&l, op);
		int n = snprintf(d, sizeof(d), "op%llu", (unsigned long long)op);
		CHECK(e && e->request_id == op && e->len == n && memcmp(e->data, d, (size_t)n) == 0);
	}
	el_log_reset(&l, 90000);
	CHECK_EQ(l.cap, EL_LOG_MIN_CAP);
	CHECK_EQ(el_log_append(&l, 3, 3, "y", 1), 90001);
	el_log_free(&l);
}

static void test_kv(void)
{
	struct el_kv kv;
	el_kv_init(&kv);
	uint8_t p[EL_MAX_OP_LEN], reply[EL_MAX_REPLY];
	struct el_op op;
	size_t n = op_bytes(p, EL_OP_GET, "a", NULL);
	el_op_decode(p, n, &op);
	CHECK_EQ(el_kv_apply(&kv, &op, reply), 0);
	n = op_bytes(p, EL_OP_PUT, "a", "hello");
	el_op_decode(p, n, &op);
	CHECK_EQ(el_kv_apply(&kv, &op, reply), 4);
	n = op_bytes(p, EL_OP_APPEND, "a", "!!");
	el_op_decode(p, n, &op);
	el_kv_apply(&kv, &op, reply);
	n = op_bytes(p, EL_OP_GET, "a", NULL);
	el_op_decode(p, n, &op);
	CHECK_EQ(el_kv_apply(&kv, &op, reply), 7);
	CHECK(memcmp(reply, "hello!!", 7) == 0);
	/* appends stop at EL_MAX_VAL */
	for (int i = 0; i < 2000; i++) {
		n = op_bytes(p, EL_OP_APPEND, "a", "xyz");
		el_op_decode(p, n, &op);
		el_kv_apply(&kv, &op, reply);
	}
	const struct el_kv_slot *s = el_kv_find(&kv, "a", 1);
	CHECK(s && s->vlen == EL_MAX_VAL);
	/* growth keeps every key */
	for (int i = 0; i < 5000; i++) {
		char key[16], val[16];
		snprintf(key, sizeof(key), "key%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		n = op_bytes(p, EL_OP_PUT, key, val);
		el_op_decode(p, n, &op);
		el_kv_apply(&kv, &op, reply);
	}
	s = el_kv_find(&kv, "key4321", 7);
	CHECK(s && s->vlen == 5 && memcmp(s->val, "v4321", 5) == 0);
	CHECK(el_kv_find(&kv, "nokey", 5) == NULL);
	el_kv_free(&kv);
}

static void test_ctable(void)
{
	struct el_ctable t;
	el_ctable_init(&t, 0);
	CHECK(el_ctable_find(&t, 42) == NULL);
	CHECK(el_ctable_find(&t, 0) == NULL);
	for (uint64_t id = 1; id <= 3000; id++) {
		struct el_client *c = el_ctable_upsert(&t, id * 7919);
		uint8_t r[4] = { 1, 2, 3, (uint8_t)id };
		el_client_set_reply(c, id, id * 10, r, sizeof(r));
	}
	struct el_client *c = el_ctable_find(&t, 1234 * 7919);
	CHECK(c && c->request_id == 1234 && c->opnum == 12340 && c->reply_len == 4 &&
	      c->reply[3] == (uint8_t)1234);
	/* upsert of an existing client returns the same entry with its state */
	struct el_client *d = el_ctable_upsert(&t, 1234 * 7919);
	CHECK(d == c && d->request_id == 1234);
	el_client_set_reply(d, 1235, 5, (const uint8_t *)"ok", 2);
	CHECK(el_ctable_find(&t, 1234 * 7919)->request_id == 1235);
	CHECK_EQ(t.used, 3000);
	el_ctable_free(&t);
}

static void test_quorum(void)
{
	/* n=3 f=1: one follower ack commits */
	struct el_quorum q;
	el_quorum_init(&q, 3, 1);
	el_quorum_reset(&q, 0);
	CHECK_EQ(el_quorum_committable(&q), 0);
	el_quorum_ack(&q, 0, 99); /* the leader's own ack is not counted */
	CHECK_EQ(el_quorum_committable(&q), 0);
	el_quorum_ack(&q, 2, 5);
	CHECK_EQ(el_quorum_committable(&q), 5);
	el_quorum_ack(&q, 2, 3); /* acks are cumulative: older ones do not go back */
	CHECK_EQ(el_quorum_committable(&q), 5);
	el_quorum_free(&q);

	/* n=5 f=2 and n=7 f=3: the f-th highest follower ack */
	el_quorum_init(&q, 5, 2);
	el_quorum_reset(&q, 1);
	el_quorum_ack(&q, 0, 10);
	CHECK_EQ(el_quorum_committable(&q), 0);
	el_quorum_ack(&q, 4, 7);
	CHECK_EQ(el_quorum_committable(&q), 7);
	el_quorum_ack(&q, 3, 12);
	CHECK_EQ(el_quorum_committable(&q), 10);
	el_quorum_reset(&q, 2); /* a new view forgets the old acks */
	CHECK_EQ(el_quorum_committable(&q), 0);
	el_quorum_free(&q);

	el_quorum_init(&q, 7, 3);
	el_quorum_reset(&q, 6);
	uint64_t acks[6] = { 4, 9, 1, 7, 7, 2 };
	for (uint32_t i = 0; i < 6; i++)
		el_quorum_ack(&q, i, acks[i]);
	CHECK_EQ(el_quorum_committable(&q), 7);
	el_quorum_free(&q);

	/* every cluster size 3..15 with f = (n-1)/2 */
	for (uint32_t n = 3; n <= 15; n += 2) {
		uint32_t f = (n - 1) / 2;
		el_quorum_init(&q, n, f);
		el_quorum_reset(&q, 0);
		for (uint32_t i = 1; i < f; i++)
			el_quorum_ack(&q, i, 100);
		CHECK_EQ(el_quorum_committable(&q), 0);
		el_quorum_ack(&q, f, 100);
		CHECK_EQ(el_quorum_committable(&q), 100);
		el_quorum_free(&q);
	}
}

static void test_config(void)
{
	struct el_cluster c;
	char err[256];
	CHECK_EQ(el_cluster_parse("# comment\nf 1\nreplica 127.0.0.1:51000\n\nreplica 127.0.0.1:51001\n"
				  "replica 10.0.0.3:51002 # trailing\n", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.n, 3);
	CHECK_EQ(c.f, 1);
	CHECK_EQ(ntohs(c.addrs[2].sin_port), 51002);
	CHECK_EQ(ntohl(c.addrs[2].sin_addr.s_addr), 0x0a000003);
	el_cluster_free(&c);

	const char *bad[] = {
		"replica 127.0.0.1:1\n",                                 /* no f */
		"f 1\nreplica 127.0.0.1:1\n",                            /* too few */
		"f 1\nreplica 127.0.0.1\nreplica 127.0.0.1:2\nreplica 127.0.0.1:3\n",
		"f 1\nreplica 127.0.0.1:70000\n",
		"f x\n",
		"f 1\nnode 1.2.3.4:5\n",
		"f 1 2\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		CHECK(el_cluster_parse(bad[i], &c, err, sizeof(err)) != 0);
		CHECK(err[0] != 0);
	}
	/* 17 replicas: beyond what the eBPF side supports */
	char big[2048] = "f 8\n";
	for (int i = 0; i < 17; i++) {
		char line[64];
		snprintf(line, sizeof(line), "replica 127.0.0.1:%d\n", 1000 + i);
		strcat(big, line);
	}
	CHECK(el_cluster_parse(big, &c, err, sizeof(err)) != 0);
}

void vr_tests(int *passed, int *failed);
void peer_tests(int *passed, int *failed);

int main(void)
{
	static const struct { const char *name; void (*fn)(void); } tests[] = {
		{ "op codec round-trip and rejects", test_op_codec },
		{ "message round-trips", test_msg_roundtrip },
		{ "malformed and truncated messages rejected", test_msg_rejects },
		{ "fuzz: random and mutated datagrams", test_fuzz },
		{ "log growth, truncate, replace", test_log },
		{ "log: the ring shrinks back once a long log is forgotten", test_log_shrinks },
		{ "kv store put/get/append", test_kv },
		{ "client table", test_ctable },
		{ "quorum logic 3..15", test_quorum },
		{ "config parsing", test_config },
	};
	el_log_threshold = EL_LOG_ERROR;
	int passed = 0, failed = 0;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int before = h_failed_checks;
		tests[i].fn();
		int ok = h_failed_checks == before;
		printf("%s %s\n", ok ? "ok  " : "FAIL", tests[i].name);
		ok ? passed++ : failed++;
	}
	vr_tests(&passed, &failed);
	peer_tests(&passed, &failed);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
