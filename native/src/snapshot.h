/* SPDX-License-Identifier: MIT
 *
 * snapshot.h - a replica's state as one byte string, for state transfer to
 * a replica that restarted without state or whose needed ops were dropped
 * from every log (PROTOCOL.md "Snapshots"):
 *
 *   the store and the client table after executing ops 1..op, and the log
 *   suffix op+1..last that the sender held, logged in normal view log_view.
 *
 * Decoding checks every field and builds the state aside: a snapshot that is
 * not exactly what an encoder writes changes nothing.
 */
#ifndef EL_SNAPSHOT_H
#define EL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define EL_SNAP_MAGIC   0x4e534c45u /* "ELSN" read as little-endian u32 */
#define EL_SNAP_VERSION 1u
#define EL_SNAP_HDR_LEN 40u

struct el_snap_meta {
	uint64_t op;        /* the store and client table are after op `op`    */
	uint64_t last;      /* the log suffix runs op+1 .. last                */
	uint64_t log_view;  /* the normal view the suffix's ops were logged in  */
	uint32_t keys, clients;
};

/* Serialises kv, the client table (oldest first, so the receiver rebuilds
 * the same eviction order) and log entries op+1..log->last into a new
 * buffer (*out, malloc'd). Returns its length. */
size_t el_snap_encode(const struct el_kv *kv, const struct el_ctable *ct, const struct el_log *log, uint64_t op,
		      uint64_t log_view, uint8_t **out);

/* Decodes a whole snapshot into the empty containers given (initialised by
 * the caller; the client table with the receiver's own max). Returns 0, or
 * -1 with *why set when the bytes are not a snapshot this replica can take
 * (then the containers may hold a partial state: the caller frees them). */
int el_snap_decode(const uint8_t *buf, size_t len, struct el_kv *kv, struct el_ctable *ct, struct el_log *log,
		   struct el_snap_meta *meta, const char **why);

/* FNV-1a 64 over the snapshot, carried in every chunk (request_id). */
uint64_t el_snap_sum(const uint8_t *buf, size_t len);

#endif
