/* SPDX-License-Identifier: MIT
 *
 * relay.h - the bench's relay floor (relay.c): replica 0 sends each client
 * request to the others and answers after f sent it back, with the
 * replica's own I/O loop and no protocol.
 */
#ifndef EL_RELAY_H
#define EL_RELAY_H

#include "replica.h"

/* One datagram on a replica started with --relay-floor. */
void el_relay_handle(struct replica *r, const void *buf, size_t len, const struct sockaddr_in *src);

#endif
