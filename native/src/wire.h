/* SPDX-License-Identifier: MIT
 * wire.h - encode/decode of electrode-lab messages (layout: el_proto.h,
 * semantics: native/PROTOCOL.md). Decoding validates every field; callers
 * only ever see messages that passed. */
#ifndef EL_WIRE_H
#define EL_WIRE_H

#include <stdint.h>
#include <stddef.h>
#include "../include/el_proto.h"

/* Largest datagram we build; keeps well under the 65507-byte UDP limit. */
#define EL_MAX_DGRAM   60000u
#define EL_MAX_KEY     64u
#define EL_MAX_VAL     1024u
#define EL_OP_HDR_LEN  4u      /* op, key_len, val_len(le16) */
#define EL_ENTRY_HDR_LEN 18u   /* client_id(le64) request_id(le64) len(le16) */
#define EL_MAX_OP_LEN  (EL_OP_HDR_LEN + EL_MAX_KEY + EL_MAX_VAL)
/* The most a reply payload may carry (a get of the largest value). */
#define EL_MAX_REPLY   (EL_MAX_VAL + 4u)

enum el_kv_op { EL_OP_PUT = 1, EL_OP_GET = 2, EL_OP_APPEND = 3, EL_OP_MAX = 3 };

/* The largest snapshot a replica sends or accepts (its store, client
 * table and log suffix, snapshot.h): far above what the store holds with
 * EL_MAX_VAL-byte values, and a bound on what a forged chunk can claim. */
#define EL_SNAP_MAX_BYTES (256u << 20)

/* GET_STATE aux / NEW_STATE request_id: what the requester wants. */
enum el_state_mode { EL_STATE_LOG = 0, EL_STATE_COMMITTED = 1 };

enum el_decode_err {
	EL_OK = 0,
	EL_ERR_SHORT = 1,       /* shorter than the header                    */
	EL_ERR_MAGIC,
	EL_ERR_VERSION,
	EL_ERR_TYPE,
	EL_ERR_REPLICA,         /* replica index >= n (or set on a request)   */
	EL_ERR_LENGTH,          /* payload_len != datagram length - 56        */
	EL_ERR_PAYLOAD,         /* payload malformed for this type            */
	EL_ERR_COUNT,           /* aux/opnum inconsistent with the payload    */
	EL_ERR_VIEW,            /* view >= 2^62, or a log view after the view */
	EL_ERR__MAX
};
const char *el_decode_strerror(int err);

/* A decoded operation; key/val point into the packet. */
struct el_op {
	uint8_t op;
	uint8_t key_len;
	uint16_t val_len;
	const uint8_t *key;
	const uint8_t *val;
};

/* A decoded log entry; data points into the packet. */
struct el_entry_ref {
	uint64_t client_id;
	uint64_t request_id;
	uint16_t len;
	const uint8_t *data;
};

struct el_msg {
	struct el_hdr h;             /* host byte order copy                      */
	const uint8_t *payload;
	uint32_t payload_len;
	uint32_t n_entries;          /* entry-carrying types: validated count     */
	uint64_t first_op;           /* entry-carrying types: op of entry 0       */
};

/* Validates everything (see PROTOCOL.md "Validation"). n_replicas bounds
 * the sender index. */
int el_msg_decode(const void *buf, size_t len, uint32_t n_replicas, struct el_msg *out);

/* Operation payloads (request payload, log entry data). */
int el_op_decode(const uint8_t *p, size_t len, struct el_op *out);
/* Returns bytes written, or 0 if it does not fit / invalid sizes. */
size_t el_op_encode(uint8_t *p, size_t cap, uint8_t op, const void *key, size_t key_len,
		    const void *val, size_t val_len);

/* Iterate entries of an already-validated message. */
struct el_entry_iter { const uint8_t *p, *end; };
void el_entry_iter_init(struct el_entry_iter *it, const struct el_msg *m);
int el_entry_next(struct el_entry_iter *it, struct el_entry_ref *e);

/* Builder. */
struct el_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
};
void el_build_start(struct el_builder *b, uint8_t *buf, size_t cap, const struct el_hdr *h);
/* Appends raw payload bytes; -1 if it does not fit. */
int el_build_bytes(struct el_builder *b, const void *p, size_t n);
int el_build_entry(struct el_builder *b, uint64_t client_id, uint64_t request_id,
		   const void *data, uint16_t len);
/* Patches payload_len (and aux when set_aux) and returns the datagram size. */
size_t el_build_finish(struct el_builder *b);
void el_build_set_aux(struct el_builder *b, uint32_t aux);
void el_build_set_opnum(struct el_builder *b, uint64_t opnum);

/* Types whose payload is a list of log entries ending at h.opnum. */
static inline int el_type_has_entries(uint8_t t)
{
	return t == EL_MSG_PREPARE || t == EL_MSG_DO_VIEW_CHANGE || t == EL_MSG_START_VIEW ||
	       t == EL_MSG_NEW_STATE;
}

#endif
