/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "store.h"
#include "util.h"

#include <assert.h>
#include <endian.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- log ---------------- */

void el_log_init(struct el_log *l)
{
	l->cap = 1024;
	l->e = el_xcalloc(l->cap, sizeof(*l->e));
	l->last = 0;
}

void el_log_free(struct el_log *l)
{
	el_log_truncate(l, 0);
	free(l->e);
	l->e = NULL;
	l->cap = 0;
}

static void entry_set(struct el_log_entry *e, uint64_t c, uint64_t r, const void *d, uint16_t len)
{
	e->client_id = c;
	e->request_id = r;
	e->len = len;
	e->data = el_xmalloc(len);
	memcpy(e->data, d, len);
}

uint64_t el_log_append(struct el_log *l, uint64_t c, uint64_t r, const void *d, uint16_t len)
{
	if (l->last == l->cap) {
		l->cap *= 2;
		l->e = el_xrealloc(l->e, l->cap * sizeof(*l->e));
	}
	entry_set(&l->e[l->last], c, r, d, len);
	return ++l->last;
}

void el_log_replace(struct el_log *l, uint64_t opnum, uint64_t c, uint64_t r, const void *d,
		    uint16_t len)
{
	assert(opnum >= 1 && opnum <= l->last);
	struct el_log_entry *e = &l->e[opnum - 1];
	free(e->data);
	entry_set(e, c, r, d, len);
}

const struct el_log_entry *el_log_get(const struct el_log *l, uint64_t opnum)
{
	if (opnum < 1 || opnum > l->last)
		return NULL;
	return &l->e[opnum - 1];
}

void el_log_truncate(struct el_log *l, uint64_t last)
{
	while (l->last > last) {
		struct el_log_entry *e = &l->e[l->last - 1];
		free(e->data);
		e->data = NULL;
		l->last--;
	}
}

/* ---------------- hashing ---------------- */

static uint64_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* ---------------- kv ---------------- */

void el_kv_init(struct el_kv *kv)
{
	kv->cap = 256;
	kv->used = 0;
	kv->slots = el_xcalloc(kv->cap, sizeof(*kv->slots));
}

void el_kv_free(struct el_kv *kv)
{
	for (size_t i = 0; i < kv->cap; i++)
		free(kv->slots[i].val);
	free(kv->slots);
	kv->slots = NULL;
}

static struct el_kv_slot *kv_slot(struct el_kv_slot *slots, size_t cap, const void *key, size_t klen)
{
	size_t i = hash_bytes(key, klen) & (cap - 1);
	for (;;) {
		struct el_kv_slot *s = &slots[i];
		if (s->klen == 0 || (s->klen == klen && memcmp(s->key, key, klen) == 0))
			return s;
		i = (i + 1) & (cap - 1);
	}
}

const struct el_kv_slot *el_kv_find(const struct el_kv *kv, const void *key, size_t klen)
{
	const struct el_kv_slot *s = kv_slot(kv->slots, kv->cap, key, klen);
	return s->klen ? s : NULL;
}

static void kv_grow(struct el_kv *kv)
{
	size_t ncap = kv->cap * 2;
	struct el_kv_slot *ns = el_xcalloc(ncap, sizeof(*ns));
	for (size_t i = 0; i < kv->cap; i++) {
		struct el_kv_slot *s = &kv->slots[i];
		if (s->klen)
			*kv_slot(ns, ncap, s->key, s->klen) = *s;
	}
	free(kv->slots);
	kv->slots = ns;
	kv->cap = ncap;
}

size_t el_kv_apply(struct el_kv *kv, const struct el_op *op, uint8_t *reply)
{
	if ((kv->used + 1) * 4 >= kv->cap * 3)
		kv_grow(kv);
	struct el_kv_slot *s = kv_slot(kv->slots, kv->cap, op->key, op->key_len);
	if (op->op == EL_OP_GET) {
		if (!s->klen)
			return 0;
		memcpy(reply, s->val, s->vlen);
		return s->vlen;
	}
	if (!s->klen) {
		s->klen = op->key_len;
		memcpy(s->key, op->key, op->key_len);
		s->val = el_xmalloc(EL_MAX_VAL);
		s->vlen = 0;
		kv->used++;
	}
	if (op->op == EL_OP_PUT) {
		memcpy(s->val, op->val, op->val_len);
		s->vlen = op->val_len;
	} else {
		/* append: values are capped at EL_MAX_VAL; the tail is dropped */
		size_t room = EL_MAX_VAL - s->vlen;
		size_t n = op->val_len < room ? op->val_len : room;
		memcpy(s->val + s->vlen, op->val, n);
		s->vlen += (uint32_t)n;
	}
	uint32_t le = htole32(s->vlen);
	memcpy(reply, &le, 4);
	return 4;
}

/* ---------------- client table ---------------- */

void el_ctable_init(struct el_ctable *t)
{
	t->cap = 64;
	t->used = 0;
	t->slots = el_xcalloc(t->cap, sizeof(*t->slots));
}

void el_ctable_free(struct el_ctable *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].reply);
	free(t->slots);
	t->slots = NULL;
}

static struct el_client *ct_slot(struct el_client *slots, size_t cap, uint64_t id)
{
	size_t i = hash_u64(id) & (cap - 1);
	for (;;) {
		if (slots[i].client_id == 0 || slots[i].client_id == id)
			return &slots[i];
		i = (i + 1) & (cap - 1);
	}
}

struct el_client *el_ctable_find(struct el_ctable *t, uint64_t id)
{
	if (id == 0)
		return NULL;
	struct el_client *c = ct_slot(t->slots, t->cap, id);
	return c->client_id ? c : NULL;
}

struct el_client *el_ctable_upsert(struct el_ctable *t, uint64_t id)
{
	assert(id != 0);
	if ((t->used + 1) * 4 >= t->cap * 3) {
		size_t ncap = t->cap * 2;
		struct el_client *ns = el_xcalloc(ncap, sizeof(*ns));
		for (size_t i = 0; i < t->cap; i++)
			if (t->slots[i].client_id)
				*ct_slot(ns, ncap, t->slots[i].client_id) = t->slots[i];
		free(t->slots);
		t->slots = ns;
		t->cap = ncap;
	}
	struct el_client *c = ct_slot(t->slots, t->cap, id);
	if (!c->client_id) {
		memset(c, 0, sizeof(*c));
		c->client_id = id;
		t->used++;
	}
	return c;
}

void el_client_set_reply(struct el_client *c, uint64_t request_id, uint64_t opnum,
			 const uint8_t *reply, size_t len)
{
	assert(len <= EL_MAX_REPLY);
	free(c->reply);
	c->reply = el_xmalloc(len);
	memcpy(c->reply, reply, len);
	c->reply_len = (uint16_t)len;
	c->request_id = request_id;
	c->opnum = opnum;
}

/* ---------------- quorum ---------------- */

void el_quorum_init(struct el_quorum *q, uint32_t n, uint32_t f)
{
	assert(n >= 1 && 2 * f + 1 <= n);
	q->n = n;
	q->f = f;
	q->leader = 0;
	q->acked = el_xcalloc(n, sizeof(*q->acked));
	q->scratch = el_xcalloc(n, sizeof(*q->scratch));
}

void el_quorum_free(struct el_quorum *q)
{
	free(q->acked);
	free(q->scratch);
	q->acked = q->scratch = NULL;
}

void el_quorum_reset(struct el_quorum *q, uint32_t leader)
{
	assert(leader < q->n);
	q->leader = leader;
	memset(q->acked, 0, q->n * sizeof(*q->acked));
}

void el_quorum_ack(struct el_quorum *q, uint32_t replica, uint64_t opnum)
{
	assert(replica < q->n);
	if (opnum > q->acked[replica]) /* acks are cumulative */
		q->acked[replica] = opnum;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

uint64_t el_quorum_committable(struct el_quorum *q)
{
	if (q->f == 0)
		return UINT64_MAX;
	size_t k = 0;
	for (uint32_t i = 0; i < q->n; i++)
		if (i != q->leader)
			q->scratch[k++] = q->acked[i];
	qsort(q->scratch, k, sizeof(*q->scratch), cmp_desc);
	assert(k >= q->f);
	return q->scratch[q->f - 1];
}
