/* SPDX-License-Identifier: MIT
 *
 * relay.h - the bench's relay floor (relay.c): replica 0 and 1 pass client
 * requests client -> 0 -> 1 -> 0 -> client with the replica's own I/O loop.
 */
#ifndef EL_RELAY_H
#define EL_RELAY_H

#include "replica.h"

/* One datagram on a replica started with --relay-floor (index 0 or 1). */
void el_relay_handle(struct replica *r, const void *buf, size_t len, const struct sockaddr_in *src);

#endif
