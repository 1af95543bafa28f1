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
	l->cap = EL_LOG_MIN_CAP;
	l->e = el_xcalloc(l->cap, sizeof(*l->e));
	l->first = 1;
	l->last = 0;
	l->head = 0;
}

static struct el_log_entry *slot_of(const struct el_log *l, uint64_t opnum)
{
	return &l->e[(l->head + (size_t)(opnum - l->first)) % l->cap];
}

void el_log_free(struct el_log *l)
{
	el_log_truncate(l, l->first - 1);
	free(l->e);
	l->e = NULL;
	l->cap = 0;
}

static void entry_set(struct el_log_entry *e, uint64_t c, uint64_t r, const void *d, uint16_t len)
{
	e->client_id = c;
	e->request_id = r;
	e->len = len;
	e->data = el_xmalloc(len ? len : 1);
	memcpy(e->data, d, len);
}

/* Unrolls the ring into one of `cap` slots (at least the entries held). */
static void ring_resize(struct el_log *l, size_t cap)
{
	size_t count = (size_t)(l->last + 1 - l->first);
	struct el_log_entry *ne = el_xcalloc(cap, sizeof(*ne));
	for (size_t i = 0; i < count; i++)
		ne[i] = l->e[(l->head + i) % l->cap];
	free(l->e);
	l->e = ne;
	l->head = 0;
	l->cap = cap;
}

/* A log that grew while a replica was behind gives the memory back once it
 * is short again: the ring halves while a quarter full (so appends do not
 * make it grow straight back), and the entries' freed bytes go back to the
 * system, or RSS would stay at the high-water mark. */
static void shrink_if_sparse(struct el_log *l)
{
	size_t count = (size_t)(l->last + 1 - l->first), cap = l->cap;
	while (cap > EL_LOG_MIN_CAP && count <= cap / 4)
		cap /= 2;
	if (cap < l->cap) {
		ring_resize(l, cap);
		el_release_free_memory();
	}
}

uint64_t el_log_append(struct el_log *l, uint64_t c, uint64_t r, const void *d, uint16_t len)
{
	size_t count = (size_t)(l->last + 1 - l->first);
	if (count == l->cap)
		ring_resize(l, l->cap * 2);
	l->last++;
	entry_set(slot_of(l, l->last), c, r, d, len);
	return l->last;
}

void el_log_replace(struct el_log *l, uint64_t opnum, uint64_t c, uint64_t r, const void *d,
		    uint16_t len)
{
	assert(opnum >= l->first && opnum <= l->last);
	struct el_log_entry *e = slot_of(l, opnum);
	free(e->data);
	entry_set(e, c, r, d, len);
}

const struct el_log_entry *el_log_get(const struct el_log *l, uint64_t opnum)
{
	if (opnum < l->first || opnum > l->last)
		return NULL;
	return slot_of(l, opnum);
}

void el_log_truncate(struct el_log *l, uint64_t last)
{
	if (last + 1 < l->first)
		last = l->first - 1;
	while (l->last > last) {
		struct el_log_entry *e = slot_of(l, l->last);
		free(e->data);
		e->data = NULL;
		l->last--;
	}
}

void el_log_forget(struct el_log *l, uint64_t upto)
{
	if (upto > l->last)
		upto = l->last;
	while (l->first <= upto) {
		struct el_log_entry *e = &l->e[l->head];
		free(e->data);
		e->data = NULL;
		l->head = (l->head + 1) % l->cap;
		l->first++;
	}
	shrink_if_sparse(l);
}

void el_log_reset(struct el_log *l, uint64_t last)
{
	el_log_truncate(l, l->first - 1);
	l->head = 0;
	l->first = last + 1;
	l->last = last;
	shrink_if_sparse(l);
}

size_t el_log_wire_bytes(const struct el_log *l, uint64_t from, uint64_t to)
{
	size_t n = 0;
	for (uint64_t op = from < l->first ? l->first : from; op <= to && op <= l->last; op++)
		n += EL_ENTRY_HDR_LEN + slot_of(l, op)->len;
	return n;
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

void el_kv_set(struct el_kv *kv, const void *key, uint8_t klen, const void *val, uint32_t vlen)
{
	assert(klen >= 1 && klen <= EL_MAX_KEY && vlen <= EL_MAX_VAL);
	if ((kv->used + 1) * 4 >= kv->cap * 3)
		kv_grow(kv);
	struct el_kv_slot *s = kv_slot(kv->slots, kv->cap, key, klen);
	if (!s->klen) {
		s->klen = klen;
		memcpy(s->key, key, klen);
		s->val = NULL;
		kv->used++;
	}
	s->val = el_xrealloc(s->val, vlen ? vlen : 1);
	memcpy(s->val, val, vlen);
	s->vlen = vlen;
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
		s->val = NULL;
		s->vlen = 0;
		kv->used++;
	}
	if (op->op == EL_OP_PUT) {
		s->val = el_xrealloc(s->val, op->val_len ? op->val_len : 1);
		memcpy(s->val, op->val, op->val_len);
		s->vlen = op->val_len;
	} else {
		/* append: values are capped at EL_MAX_VAL; the tail is dropped */
		size_t room = EL_MAX_VAL - s->vlen;
		size_t n = op->val_len < room ? op->val_len : room;
		s->val = el_xrealloc(s->val, s->vlen + n ? s->vlen + n : 1);
		memcpy(s->val + s->vlen, op->val, n);
		s->vlen += (uint32_t)n;
	}
	uint32_t le = htole32(s->vlen);
	memcpy(reply, &le, 4);
	return 4;
}

/* ---------------- client table ---------------- */

void el_ctable_init(struct el_ctable *t, size_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max ? max : EL_CTABLE_DEFAULT_MAX;
	t->slab_cap = t->max < 64 ? t->max : 64;
	t->slab = el_xcalloc(t->slab_cap, sizeof(*t->slab));
	t->index_cap = 128;
	while (t->index_cap < t->slab_cap * 2)
		t->index_cap *= 2;
	t->index = el_xcalloc(t->index_cap, sizeof(*t->index));
}

void el_ctable_free(struct el_ctable *t)
{
	for (size_t i = 0; i < t->used; i++)
		free(t->slab[i].reply);
	free(t->slab);
	free(t->index);
	t->slab = NULL;
	t->index = NULL;
}

/* The index position holding client id, or the empty one where it would go. */
static size_t ct_probe(const struct el_ctable *t, uint64_t id)
{
	size_t mask = t->index_cap - 1, i = hash_u64(id) & mask;
	while (t->index[i] && t->slab[t->index[i] - 1].client_id != id)
		i = (i + 1) & mask;
	return i;
}

static void ct_index_grow(struct el_ctable *t)
{
	free(t->index);
	t->index_cap *= 2;
	t->index = el_xcalloc(t->index_cap, sizeof(*t->index));
	for (size_t s = 0; s < t->used; s++)
		t->index[ct_probe(t, t->slab[s].client_id)] = (uint32_t)s + 1;
}

/* Removes id from the index (backward-shift deletion keeps probe runs whole). */
static void ct_index_remove(struct el_ctable *t, uint64_t id)
{
	size_t mask = t->index_cap - 1, i = ct_probe(t, id);
	if (!t->index[i])
		return;
	t->index[i] = 0;
	for (size_t j = (i + 1) & mask; t->index[j]; j = (j + 1) & mask) {
		size_t home = hash_u64(t->slab[t->index[j] - 1].client_id) & mask;
		/* move j back to i when its home does not lie cyclically in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			t->index[i] = t->index[j];
			t->index[j] = 0;
			i = j;
		}
	}
}

static void lru_unlink(struct el_ctable *t, uint32_t pos)
{
	struct el_client *c = &t->slab[pos - 1];
	if (c->prev)
		t->slab[c->prev - 1].next = c->next;
	else
		t->lru_head = c->next;
	if (c->next)
		t->slab[c->next - 1].prev = c->prev;
	else
		t->lru_tail = c->prev;
	c->prev = c->next = 0;
}

static void lru_push(struct el_ctable *t, uint32_t pos)
{
	struct el_client *c = &t->slab[pos - 1];
	c->prev = t->lru_tail;
	c->next = 0;
	if (t->lru_tail)
		t->slab[t->lru_tail - 1].next = pos;
	else
		t->lru_head = pos;
	t->lru_tail = pos;
}

struct el_client *el_ctable_find(struct el_ctable *t, uint64_t id)
{
	if (id == 0)
		return NULL;
	size_t i = ct_probe(t, id);
	return t->index[i] ? &t->slab[t->index[i] - 1] : NULL;
}

void el_ctable_touch(struct el_ctable *t, struct el_client *c)
{
	uint32_t pos = (uint32_t)(c - t->slab) + 1;
	if (t->lru_tail == pos)
		return;
	lru_unlink(t, pos);
	lru_push(t, pos);
}

struct el_client *el_ctable_upsert(struct el_ctable *t, uint64_t id)
{
	assert(id != 0);
	struct el_client *c = el_ctable_find(t, id);
	if (c)
		return c;
	uint32_t pos;
	if (t->used == t->max) {
		/* forget the client whose last request is the oldest */
		pos = t->lru_head;
		struct el_client *old = &t->slab[pos - 1];
		ct_index_remove(t, old->client_id);
		lru_unlink(t, pos);
		free(old->reply);
		t->evicted++;
	} else {
		if (t->used == t->slab_cap) {
			size_t ncap = t->slab_cap * 2 < t->max ? t->slab_cap * 2 : t->max;
			t->slab = el_xrealloc(t->slab, ncap * sizeof(*t->slab));
			memset(t->slab + t->slab_cap, 0, (ncap - t->slab_cap) * sizeof(*t->slab));
			t->slab_cap = ncap;
		}
		if ((t->used + 1) * 2 > t->index_cap)
			ct_index_grow(t);
		pos = (uint32_t)++t->used;
	}
	c = &t->slab[pos - 1];
	memset(c, 0, sizeof(*c));
	c->client_id = id;
	t->index[ct_probe(t, id)] = pos;
	lru_push(t, pos);
	return c;
}

void el_client_set_reply(struct el_client *c, uint64_t request_id, uint64_t opnum,
			 const uint8_t *reply, size_t len)
{
	assert(len <= EL_MAX_REPLY);
	free(c->reply);
	c->reply = el_xmalloc(len ? len : 1);
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

uint64_t el_kv_digest(const struct el_kv *kv)
{
	uint64_t d = 0;
	for (size_t i = 0; i < kv->cap; i++) {
		const struct el_kv_slot *sl = &kv->slots[i];
		if (!sl->klen)
			continue;
		uint64_t h = 1469598103934665603ull;
		for (size_t k = 0; k < sl->klen; k++)
			h = (h ^ (uint8_t)sl->key[k]) * 1099511628211ull;
		for (size_t k = 0; k < sl->vlen; k++)
			h = (h ^ sl->val[k]) * 1099511628211ull;
		d += h;
	}
	return d;
}
