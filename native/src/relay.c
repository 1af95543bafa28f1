/* SPDX-License-Identifier: MIT
 *
 * relay.c - the bench's relay floor (`replica --relay-floor`): the critical
 * path of one VR op without the protocol. A client's request reaches
 * replica 0, which sends it on to replica 1; replica 1 sends it back to
 * replica 0, which returns it to the client (`client --echo` takes its own
 * request back). Two network round trips, as a VR op needs (client ->
 * leader -> follower -> leader -> client), through the replica's own
 * process: its socket options, epoll loop, non-blocking recvmmsg batches
 * and one sendto per message. What a VR op costs above this is protocol.
 */
#define _GNU_SOURCE
#include "relay.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

static int same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static void relay_send(struct replica *r, const void *buf, size_t len, const struct sockaddr_in *to)
{
	if (sendto(r->sock, buf, len, 0, (const struct sockaddr *)to, sizeof(*to)) < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			LOG_DEBUG("relay: sendto: %s", strerror(errno));
		r->relay.send_failed++;
		return;
	}
	r->relay.sent++;
}

/* The client id of a well-formed request header; 0 when it is not one. */
static uint64_t request_client(const void *buf, size_t len)
{
	struct el_hdr h;
	if (len < sizeof(h))
		return 0;
	memcpy(&h, buf, sizeof(h));
	if (le32toh(h.magic) != EL_MAGIC || h.version != EL_VERSION || h.type != EL_MSG_REQUEST)
		return 0;
	return le64toh(h.client_id);
}

void el_relay_handle(struct replica *r, const void *buf, size_t len, const struct sockaddr_in *src)
{
	uint64_t cid = request_client(buf, len);
	if (!cid) {
		r->relay.refused++; /* only client requests travel the relay */
		return;
	}
	if (r->o.index == 1) {
		if (!same_addr(src, &r->cl.addrs[0])) {
			r->relay.refused++;
			return;
		}
		relay_send(r, buf, len, &r->cl.addrs[0]);
		return;
	}
	if (same_addr(src, &r->cl.addrs[1])) {
		/* back from replica 1: to the client that sent it */
		struct el_client *c = el_ctable_find(&r->relay.clients, cid);
		if (!c || !c->has_addr) {
			r->relay.refused++;
			return;
		}
		relay_send(r, buf, len, &c->addr);
		return;
	}
	for (uint32_t i = 0; i < r->cl.n; i++)
		if (same_addr(src, &r->cl.addrs[i])) {
			r->relay.refused++; /* a replica's address is never a client's */
			return;
		}
	struct el_client *c = el_ctable_upsert(&r->relay.clients, cid);
	c->addr = *src;
	c->has_addr = 1;
	r->relay.forwarded++;
	relay_send(r, buf, len, &r->cl.addrs[1]);
}
