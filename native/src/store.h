/* SPDX-License-Identifier: MIT
 * store.h - replica state containers, all sized at run time:
 * the growable op log, the key-value store, the client table and the
 * leader's quorum tracker. */
#ifndef EL_STORE_H
#define EL_STORE_H

#include <netinet/in.h>
#include <stdint.h>
#include <stddef.h>
#include "wire.h"

/* ---- log: op numbers start at 1 ----
 * A ring of entries first..last: the prefix every replica has committed is
 * dropped (el_log_forget), so memory follows the uncommitted window, not the
 * history. */
struct el_log_entry {
	uint64_t client_id;
	uint64_t request_id;
	uint16_t len;
	uint8_t *data;      /* encoded operation (wire.h el_op)            */
};

/* The ring's smallest size; it doubles when full and halves when a quarter full. */
#define EL_LOG_MIN_CAP 1024u

struct el_log {
	struct el_log_entry *e;
	uint64_t first;     /* first op still held (last + 1 when empty)    */
	uint64_t last;      /* last op number (0 = nothing ever appended)   */
	size_t cap, head;   /* ring: op `first` is at e[head]               */
};

void el_log_init(struct el_log *l);
void el_log_free(struct el_log *l);
uint64_t el_log_append(struct el_log *l, uint64_t client_id, uint64_t request_id,
		       const void *data, uint16_t len);
/* Replaces op `opnum` (first <= opnum <= last). */
void el_log_replace(struct el_log *l, uint64_t opnum, uint64_t client_id, uint64_t request_id,
		    const void *data, uint16_t len);
/* NULL outside first..last. */
const struct el_log_entry *el_log_get(const struct el_log *l, uint64_t opnum);
/* Drops ops after `last` (never below first - 1). */
void el_log_truncate(struct el_log *l, uint64_t last);
/* Drops ops up to and including `upto` (never beyond last). */
void el_log_forget(struct el_log *l, uint64_t upto);
/* Empties the log so that the next op appended is `last` + 1 (a snapshot
 * holds everything up to `last`). */
void el_log_reset(struct el_log *l, uint64_t last);
/* Bytes the entries first..last hold on the wire (entry headers + ops). */
size_t el_log_wire_bytes(const struct el_log *l, uint64_t from, uint64_t to);

/* ---- key-value store ---- */
struct el_kv_slot {
	uint8_t klen;       /* 0 = empty */
	char key[EL_MAX_KEY];
	uint8_t *val;       /* vlen bytes, sized to fit                     */
	uint32_t vlen;
};

struct el_kv {
	struct el_kv_slot *slots;
	size_t cap, used;
};

void el_kv_init(struct el_kv *kv);
void el_kv_free(struct el_kv *kv);
/* Executes an op; writes the result (get: value; put/append: le32 length)
 * into reply (>= EL_MAX_REPLY bytes); returns its length. */
size_t el_kv_apply(struct el_kv *kv, const struct el_op *op, uint8_t *reply);
const struct el_kv_slot *el_kv_find(const struct el_kv *kv, const void *key, size_t klen);
/* Sets key to val (klen 1..EL_MAX_KEY, vlen <= EL_MAX_VAL), as a snapshot
 * installs it. */
void el_kv_set(struct el_kv *kv, const void *key, uint8_t klen, const void *val, uint32_t vlen);
/* Order-independent FNV-1a digest of every key and value: two stores with
 * the same contents have the same digest (the tests compare replicas by it). */
uint64_t el_kv_digest(const struct el_kv *kv);

/* ---- client table: latest request per client and its cached reply ----
 * Bounded: past `max` clients the one whose last request executed longest
 * ago is forgotten. The order comes from execution only, so every replica
 * forgets the same client at the same op. A forgotten client's later
 * requests are refused (vr.c: only request 1 opens a session), so a retry
 * can never execute twice; the one hole is a retry of request 1 itself
 * after `max` newer clients executed since. */
struct el_client {
	uint64_t client_id;     /* 0 = free slot (client ids are never 0)  */
	uint64_t request_id;    /* latest executed request                  */
	uint64_t opnum;         /* where it executed                        */
	uint8_t *reply;
	uint16_t reply_len;
	uint8_t has_addr;
	struct sockaddr_in addr;/* where the client last sent from          */
	uint32_t prev, next;    /* least recently updated first             */
};

struct el_ctable {
	struct el_client *slab; /* entries, stable positions                */
	size_t slab_cap, used, max;
	uint32_t *index;        /* open addressing: slab position + 1, 0 = empty */
	size_t index_cap;
	uint32_t lru_head, lru_tail; /* slab positions + 1, 0 = none       */
	uint64_t evicted;
};

#define EL_CTABLE_DEFAULT_MAX 16384

void el_ctable_init(struct el_ctable *t, size_t max);
void el_ctable_free(struct el_ctable *t);
struct el_client *el_ctable_find(struct el_ctable *t, uint64_t client_id);
/* Finds or creates (evicting the least recently touched client when full). */
struct el_client *el_ctable_upsert(struct el_ctable *t, uint64_t client_id);
/* Marks a client most recently used. */
void el_ctable_touch(struct el_ctable *t, struct el_client *c);
void el_client_set_reply(struct el_client *c, uint64_t request_id, uint64_t opnum,
			 const uint8_t *reply, size_t len);

/* ---- quorum tracking at the leader ---- */
struct el_quorum {
	uint32_t n, f, leader;
	uint64_t *acked;        /* per replica: highest op acked in this view */
	uint64_t *scratch;
};

void el_quorum_init(struct el_quorum *q, uint32_t n, uint32_t f);
void el_quorum_free(struct el_quorum *q);
void el_quorum_reset(struct el_quorum *q, uint32_t leader);
void el_quorum_ack(struct el_quorum *q, uint32_t replica, uint64_t opnum);
/* Highest op acked by at least f followers (UINT64_MAX when f == 0). */
uint64_t el_quorum_committable(struct el_quorum *q);

#endif
