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

/* ---- log: op numbers start at 1 ---- */
struct el_log_entry {
	uint64_t client_id;
	uint64_t request_id;
	uint16_t len;
	uint8_t *data;      /* encoded operation (wire.h el_op)            */
};

struct el_log {
	struct el_log_entry *e;
	uint64_t last;      /* last op number (0 = empty)                   */
	size_t cap;
};

void el_log_init(struct el_log *l);
void el_log_free(struct el_log *l);
uint64_t el_log_append(struct el_log *l, uint64_t client_id, uint64_t request_id,
		       const void *data, uint16_t len);
/* Replaces op `opnum` (<= last). */
void el_log_replace(struct el_log *l, uint64_t opnum, uint64_t client_id, uint64_t request_id,
		    const void *data, uint16_t len);
const struct el_log_entry *el_log_get(const struct el_log *l, uint64_t opnum);
void el_log_truncate(struct el_log *l, uint64_t last);

/* ---- key-value store ---- */
struct el_kv_slot {
	uint8_t klen;       /* 0 = empty */
	char key[EL_MAX_KEY];
	uint8_t *val;
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

/* ---- client table: latest request per client and its cached reply ---- */
struct el_client {
	uint64_t client_id;     /* 0 = empty slot (client ids are never 0) */
	uint64_t request_id;    /* latest executed request                  */
	uint64_t opnum;         /* where it executed                        */
	uint8_t *reply;
	uint16_t reply_len;
	uint8_t has_addr;
	struct sockaddr_in addr;/* where the client last sent from          */
};

struct el_ctable {
	struct el_client *slots;
	size_t cap, used;
};

void el_ctable_init(struct el_ctable *t);
void el_ctable_free(struct el_ctable *t);
struct el_client *el_ctable_find(struct el_ctable *t, uint64_t client_id);
struct el_client *el_ctable_upsert(struct el_ctable *t, uint64_t client_id);
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
