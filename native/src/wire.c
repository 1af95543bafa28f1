/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "wire.h"

#include <assert.h>
#include <endian.h>
#include <string.h>

static uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static void st64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static void st32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void st16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }

static const char *const errs[] = {
	[EL_OK] = "ok",
	[EL_ERR_SHORT] = "shorter than the 56-byte header",
	[EL_ERR_MAGIC] = "bad magic",
	[EL_ERR_VERSION] = "unsupported version",
	[EL_ERR_TYPE] = "unknown message type",
	[EL_ERR_REPLICA] = "bad replica index",
	[EL_ERR_LENGTH] = "payload_len does not match the datagram length",
	[EL_ERR_PAYLOAD] = "malformed payload",
	[EL_ERR_COUNT] = "entry count inconsistent with header",
	[EL_ERR_VIEW] = "view number out of range",
};

const char *el_decode_strerror(int err)
{
	if (err < 0 || err >= EL_ERR__MAX)
		return "unknown error";
	return errs[err];
}

int el_op_decode(const uint8_t *p, size_t len, struct el_op *out)
{
	if (len < EL_OP_HDR_LEN)
		return EL_ERR_PAYLOAD;
	uint8_t op = p[0], kl = p[1];
	uint16_t vl = ld16(p + 2);
	if (op < 1 || op > EL_OP_MAX || kl < 1 || kl > EL_MAX_KEY || vl > EL_MAX_VAL)
		return EL_ERR_PAYLOAD;
	if (op == EL_OP_GET && vl != 0)
		return EL_ERR_PAYLOAD;
	if ((size_t)EL_OP_HDR_LEN + kl + vl != len)
		return EL_ERR_PAYLOAD;
	out->op = op;
	out->key_len = kl;
	out->val_len = vl;
	out->key = p + EL_OP_HDR_LEN;
	out->val = p + EL_OP_HDR_LEN + kl;
	return EL_OK;
}

size_t el_op_encode(uint8_t *p, size_t cap, uint8_t op, const void *key, size_t key_len,
		    const void *val, size_t val_len)
{
	if (op < 1 || op > EL_OP_MAX || key_len < 1 || key_len > EL_MAX_KEY || val_len > EL_MAX_VAL)
		return 0;
	if (op == EL_OP_GET && val_len)
		return 0;
	size_t n = EL_OP_HDR_LEN + key_len + val_len;
	if (n > cap)
		return 0;
	p[0] = op;
	p[1] = (uint8_t)key_len;
	st16(p + 2, (uint16_t)val_len);
	memcpy(p + EL_OP_HDR_LEN, key, key_len);
	if (val_len)
		memcpy(p + EL_OP_HDR_LEN + key_len, val, val_len);
	return n;
}

/* Walks the entry list, validating each entry; returns count or -1. */
static long count_entries(const uint8_t *p, size_t len)
{
	long n = 0;
	size_t off = 0;
	while (off < len) {
		if (len - off < EL_ENTRY_HDR_LEN)
			return -1;
		uint16_t el = ld16(p + off + 16);
		if (ld64(p + off) == 0 || ld64(p + off + 8) == 0)
			return -1; /* client and request ids are never 0 */
		off += EL_ENTRY_HDR_LEN;
		if (len - off < el)
			return -1;
		struct el_op op;
		if (el_op_decode(p + off, el, &op) != EL_OK)
			return -1;
		off += el;
		n++;
	}
	return n;
}

static void load_hdr(const uint8_t *p, struct el_hdr *h)
{
	h->magic = ld32(p + 0);
	h->version = p[4];
	h->type = p[5];
	h->flags = p[6];
	h->replica = p[7];
	h->view = ld64(p + 8);
	h->opnum = ld64(p + 16);
	h->commit = ld64(p + 24);
	h->client_id = ld64(p + 32);
	h->request_id = ld64(p + 40);
	h->payload_len = ld32(p + 48);
	h->aux = ld32(p + 52);
}

/* What every message's header must say, whatever its type. */
static int check_hdr(const struct el_hdr *h, size_t len, uint32_t n_replicas)
{
	if (h->magic != EL_MAGIC)
		return EL_ERR_MAGIC;
	if (h->version != EL_VERSION)
		return EL_ERR_VERSION;
	if (h->type < 1 || h->type > EL_MSG_TYPE_MAX)
		return EL_ERR_TYPE;
	if (h->type == EL_MSG_REQUEST) {
		if (h->replica != EL_NO_REPLICA)
			return EL_ERR_REPLICA;
	} else if (h->replica >= n_replicas) {
		return EL_ERR_REPLICA;
	}
	if ((size_t)h->payload_len != len - EL_HDR_LEN)
		return EL_ERR_LENGTH;
	/* views stay below 2^62 (they share a word with the status in el_ctrl),
	 * so view + 1 never wraps; a log's normal view is never after its view */
	if (h->view >= EL_VIEW_LIMIT)
		return EL_ERR_VIEW;
	if ((h->type == EL_MSG_DO_VIEW_CHANGE || h->type == EL_MSG_START_VIEW) && h->client_id > h->view)
		return EL_ERR_VIEW;
	return EL_OK;
}

/* The entry list of a message type that has one (Prepare, DoViewChange, ...). */
static int check_entries(struct el_msg *out)
{
	const struct el_hdr *h = &out->h;
	assert(el_type_has_entries(h->type));
	long n = count_entries(out->payload, out->payload_len);
	if (n < 0)
		return EL_ERR_PAYLOAD;
	if ((uint64_t)n != h->aux)
		return EL_ERR_COUNT;
	/* a Prepare carries at least one op; the others may be empty */
	if (h->type == EL_MSG_PREPARE && n == 0)
		return EL_ERR_COUNT;
	if ((uint64_t)n > h->opnum)
		return EL_ERR_COUNT;
	if (h->type == EL_MSG_NEW_STATE && h->request_id != EL_STATE_LOG &&
	    h->request_id != EL_STATE_COMMITTED)
		return EL_ERR_PAYLOAD;
	out->n_entries = (uint32_t)n;
	out->first_op = h->opnum - (uint64_t)n + 1;
	return EL_OK;
}

/* What the payload of each message type must hold. */
static int check_payload(struct el_msg *out)
{
	const struct el_hdr *h = &out->h;
	switch (h->type) {
	case EL_MSG_REQUEST: {
		struct el_op op;
		if (h->client_id == 0 || h->request_id == 0)
			return EL_ERR_PAYLOAD;
		if (el_op_decode(out->payload, out->payload_len, &op) != EL_OK)
			return EL_ERR_PAYLOAD;
		return EL_OK;
	}
	case EL_MSG_REPLY:
		return out->payload_len > EL_MAX_REPLY ? EL_ERR_PAYLOAD : EL_OK;
	case EL_MSG_PREPARE_OK:
	case EL_MSG_COMMIT:
	case EL_MSG_START_VIEW_CHANGE:
	case EL_MSG_GET_SNAPSHOT:
		return out->payload_len != 0 ? EL_ERR_PAYLOAD : EL_OK;
	case EL_MSG_GET_STATE:
		if (out->payload_len != 0)
			return EL_ERR_PAYLOAD;
		if (h->aux != EL_STATE_LOG && h->aux != EL_STATE_COMMITTED)
			return EL_ERR_PAYLOAD;
		return EL_OK;
	case EL_MSG_RECOVERY:
		/* the nonce is what makes a response belong to this recovery */
		if (out->payload_len != 0 || h->request_id == 0)
			return EL_ERR_PAYLOAD;
		return EL_OK;
	case EL_MSG_RECOVERY_RESPONSE:
		if (out->payload_len != 0 || h->request_id == 0 || h->aux > (EL_RR_NORMAL | EL_RR_EMPTY))
			return EL_ERR_PAYLOAD;
		if (h->commit > h->opnum)
			return EL_ERR_COUNT;
		return EL_OK;
	case EL_MSG_SNAPSHOT_CHUNK:
		/* a chunk lies inside a snapshot of bounded size; what the bytes
		 * say is checked when the whole snapshot is there (snapshot.c) */
		if (out->payload_len == 0 || h->client_id > EL_SNAP_MAX_BYTES ||
		    (uint64_t)h->aux + out->payload_len > h->client_id)
			return EL_ERR_PAYLOAD;
		return EL_OK;
	default:
		return check_entries(out);
	}
}

int el_msg_decode(const void *buf, size_t len, uint32_t n_replicas, struct el_msg *out)
{
	const uint8_t *p = buf;
	if (len < EL_HDR_LEN)
		return EL_ERR_SHORT;
	load_hdr(p, &out->h);
	int rc = check_hdr(&out->h, len, n_replicas);
	if (rc != EL_OK)
		return rc;
	out->payload = p + EL_HDR_LEN;
	out->payload_len = out->h.payload_len;
	out->n_entries = 0;
	out->first_op = 0;
	return check_payload(out);
}

void el_entry_iter_init(struct el_entry_iter *it, const struct el_msg *m)
{
	it->p = m->payload;
	it->end = m->payload + m->payload_len;
}

int el_entry_next(struct el_entry_iter *it, struct el_entry_ref *e)
{
	if (it->end - it->p < (long)EL_ENTRY_HDR_LEN)
		return 0;
	e->client_id = ld64(it->p);
	e->request_id = ld64(it->p + 8);
	e->len = ld16(it->p + 16);
	/* only called on validated messages: the entry is complete */
	assert(it->end - it->p >= (long)EL_ENTRY_HDR_LEN + e->len);
	e->data = it->p + EL_ENTRY_HDR_LEN;
	it->p += EL_ENTRY_HDR_LEN + e->len;
	return 1;
}

void el_build_start(struct el_builder *b, uint8_t *buf, size_t cap, const struct el_hdr *h)
{
	assert(cap >= EL_HDR_LEN);
	b->buf = buf;
	b->cap = cap;
	b->len = EL_HDR_LEN;
	st32(buf + 0, EL_MAGIC);
	buf[4] = EL_VERSION;
	buf[5] = h->type;
	buf[6] = h->flags;
	buf[7] = h->replica;
	st64(buf + 8, h->view);
	st64(buf + 16, h->opnum);
	st64(buf + 24, h->commit);
	st64(buf + 32, h->client_id);
	st64(buf + 40, h->request_id);
	st32(buf + 48, 0);
	st32(buf + 52, h->aux);
}

int el_build_bytes(struct el_builder *b, const void *p, size_t n)
{
	if (b->cap - b->len < n)
		return -1;
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	return 0;
}

int el_build_entry(struct el_builder *b, uint64_t client_id, uint64_t request_id,
		   const void *data, uint16_t len)
{
	if (b->cap - b->len < EL_ENTRY_HDR_LEN + (size_t)len)
		return -1;
	uint8_t *p = b->buf + b->len;
	st64(p, client_id);
	st64(p + 8, request_id);
	st16(p + 16, len);
	memcpy(p + EL_ENTRY_HDR_LEN, data, len);
	b->len += EL_ENTRY_HDR_LEN + len;
	return 0;
}

void el_build_set_aux(struct el_builder *b, uint32_t aux) { st32(b->buf + 52, aux); }
void el_build_set_opnum(struct el_builder *b, uint64_t opnum) { st64(b->buf + 16, opnum); }

size_t el_build_finish(struct el_builder *b)
{
	st32(b->buf + 48, (uint32_t)(b->len - EL_HDR_LEN));
	return b->len;
}
