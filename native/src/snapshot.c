/* SPDX-License-Identifier: MIT
 *
 * snapshot.c - the byte layout of a snapshot (little-endian):
 *
 *   header  magic u32 · version u32 · op u64 · last u64 · log_view u64 ·
 *           keys u32 · clients u32                                (40 bytes)
 *   keys    klen u8 (1..64) · key · vlen le32 (<= 1024) · value
 *   clients client_id le64 · request_id le64 · opnum le64 (<= op) ·
 *           reply_len le16 (<= 1028) · reply           (oldest first)
 *   entries client_id le64 · request_id le64 · len le16 · operation
 *           (ops op+1 .. last, each a valid operation)
 *
 * and nothing after the last entry.
 */
#define _GNU_SOURCE
#include "snapshot.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wire.h"

struct sbuf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct sbuf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n) {
		while (b->cap - b->len < n)
			b->cap = b->cap ? b->cap * 2 : 4096;
		b->p = el_xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}
static void put8(struct sbuf *b, uint8_t v) { put(b, &v, 1); }
static void put16(struct sbuf *b, uint16_t v) { v = htole16(v); put(b, &v, 2); }
static void put32(struct sbuf *b, uint32_t v) { v = htole32(v); put(b, &v, 4); }
static void put64(struct sbuf *b, uint64_t v) { v = htole64(v); put(b, &v, 8); }

uint64_t el_snap_sum(const uint8_t *buf, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= buf[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

size_t el_snap_encode(const struct el_kv *kv, const struct el_ctable *ct, const struct el_log *log, uint64_t op,
		      uint64_t log_view, uint8_t **out)
{
	struct sbuf b = { 0 };
	uint64_t last = log->last > op ? log->last : op;
	put32(&b, EL_SNAP_MAGIC);
	put32(&b, EL_SNAP_VERSION);
	put64(&b, op);
	put64(&b, last);
	put64(&b, log_view);
	put32(&b, (uint32_t)kv->used);
	put32(&b, (uint32_t)ct->used);
	for (size_t i = 0; i < kv->cap; i++) {
		const struct el_kv_slot *s = &kv->slots[i];
		if (!s->klen)
			continue;
		put8(&b, s->klen);
		put(&b, s->key, s->klen);
		put32(&b, s->vlen);
		put(&b, s->val, s->vlen);
	}
	for (uint32_t pos = ct->lru_head; pos; pos = ct->slab[pos - 1].next) {
		const struct el_client *c = &ct->slab[pos - 1];
		put64(&b, c->client_id);
		put64(&b, c->request_id);
		put64(&b, c->opnum);
		put16(&b, c->reply_len);
		put(&b, c->reply, c->reply_len);
	}
	for (uint64_t k = op + 1; k <= last; k++) {
		const struct el_log_entry *e = el_log_get(log, k);
		/* the caller snapshots at its executed op: it holds everything after */
		if (!e)
			abort();
		put64(&b, e->client_id);
		put64(&b, e->request_id);
		put16(&b, e->len);
		put(&b, e->data, e->len);
	}
	*out = b.p;
	return b.len;
}

struct rd {
	const uint8_t *p;
	size_t left;
};

static int take(struct rd *r, void *out, size_t n)
{
	if (r->left < n)
		return -1;
	memcpy(out, r->p, n);
	r->p += n;
	r->left -= n;
	return 0;
}
static int take16(struct rd *r, uint16_t *v) { if (take(r, v, 2)) return -1; *v = le16toh(*v); return 0; }
static int take32(struct rd *r, uint32_t *v) { if (take(r, v, 4)) return -1; *v = le32toh(*v); return 0; }
static int take64(struct rd *r, uint64_t *v) { if (take(r, v, 8)) return -1; *v = le64toh(*v); return 0; }

#define BAD(text)                 \
	do {                      \
		*why = (text);    \
		return -1;        \
	} while (0)

int el_snap_decode(const uint8_t *buf, size_t len, struct el_kv *kv, struct el_ctable *ct, struct el_log *log,
		   struct el_snap_meta *m, const char **why)
{
	struct rd r = { buf, len };
	uint32_t magic, version;
	if (take32(&r, &magic) || take32(&r, &version) || take64(&r, &m->op) || take64(&r, &m->last) ||
	    take64(&r, &m->log_view) || take32(&r, &m->keys) || take32(&r, &m->clients))
		BAD("shorter than a snapshot header");
	if (magic != EL_SNAP_MAGIC || version != EL_SNAP_VERSION)
		BAD("not a snapshot (magic or version)");
	if (m->last < m->op || m->log_view >= EL_VIEW_LIMIT)
		BAD("log suffix ends before the snapshot's op, or its view is out of range");
	/* every item takes a few bytes: counts the bytes cannot hold are lies */
	if (m->keys > r.left / 6 || m->clients > r.left / 26 || m->last - m->op > r.left / (EL_ENTRY_HDR_LEN + 5))
		BAD("counts larger than the snapshot can hold");
	if (m->clients > ct->max)
		BAD("more clients than this replica's client table holds (do the replica configs' max-clients lines differ?)");
	for (uint32_t i = 0; i < m->keys; i++) {
		uint8_t klen;
		uint32_t vlen;
		uint8_t key[EL_MAX_KEY];
		if (take(&r, &klen, 1) || klen < 1 || klen > EL_MAX_KEY || take(&r, key, klen) || take32(&r, &vlen) ||
		    vlen > EL_MAX_VAL || r.left < vlen)
			BAD("a key or value out of range");
		if (el_kv_find(kv, key, klen))
			BAD("a key listed twice");
		el_kv_set(kv, key, klen, r.p, vlen);
		r.p += vlen;
		r.left -= vlen;
	}
	for (uint32_t i = 0; i < m->clients; i++) {
		uint64_t id, rid, opnum;
		uint16_t rlen;
		if (take64(&r, &id) || take64(&r, &rid) || take64(&r, &opnum) || take16(&r, &rlen) || id == 0 || rid == 0 ||
		    opnum == 0 || opnum > m->op || rlen > EL_MAX_REPLY || r.left < rlen)
			BAD("a client table entry out of range");
		if (el_ctable_find(ct, id))
			BAD("a client listed twice");
		struct el_client *c = el_ctable_upsert(ct, id);
		el_client_set_reply(c, rid, opnum, r.p, rlen);
		r.p += rlen;
		r.left -= rlen;
	}
	el_log_reset(log, m->op);
	for (uint64_t k = m->op + 1; k <= m->last; k++) {
		uint64_t id, rid;
		uint16_t elen;
		struct el_op op;
		if (take64(&r, &id) || take64(&r, &rid) || take16(&r, &elen) || id == 0 || rid == 0 || r.left < elen ||
		    el_op_decode(r.p, elen, &op) != EL_OK)
			BAD("a log entry that is not a valid operation");
		el_log_append(log, id, rid, r.p, elen);
		r.p += elen;
		r.left -= elen;
	}
	if (r.left)
		BAD("bytes after the last log entry");
	return 0;
}
