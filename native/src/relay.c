/* SPDX-License-Identifier: MIT
 *
 * relay.c - the bench's relay floor (`replica --relay-floor`): the message
 * pattern of one VR op without the protocol. A client's request reaches
 * replica 0, which sends it to every other replica; each sends it straight
 * back, and replica 0 returns it to the client (`client --echo` takes its own
 * request back) when f of them did, as a leader answers once f followers
 * acknowledged. So the floor has VR's critical path, two network round
 * trips with the quorum's fastest-f-of-(n-1) wait, through the replica's own
 * process: its socket options, epoll loop, non-blocking recvmmsg batches and
 * one sendto per message. What a VR op costs above this is protocol.
 */
#define _GNU_SOURCE
#include "relay.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "peer.h"
#include "util.h"

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

/* The client id (and request id) of a well-formed request header; 0 when it is not one. */
static uint64_t request_client(const void *buf, size_t len, uint64_t *rid)
{
	struct el_hdr h;
	if (len < sizeof(h))
		return 0;
	memcpy(&h, buf, sizeof(h));
	if (le32toh(h.magic) != EL_MAGIC || h.version != EL_VERSION || h.type != EL_MSG_REQUEST)
		return 0;
	*rid = le64toh(h.request_id);
	return le64toh(h.client_id);
}

/* Replica 0: a client's request goes to every other replica; it goes back
 * to the client when the f-th copy returned. One request in flight per
 * client id (a closed-loop client thread), as the client table holds. */
static void relay_leader(struct replica *r, const void *buf, size_t len, const struct sockaddr_in *src,
			 uint64_t cid, uint64_t rid)
{
	int from = el_peer_index(r->cl.addrs, r->cl.n, src);
	if (from == 0) {
		r->relay.refused++;
		return;
	}
	if (from > 0) {
		struct el_client *c = el_ctable_find(&r->relay.clients, cid);
		if (!c || !c->has_addr) {
			r->relay.refused++;
			return;
		}
		/* after the f-th, or of a request already answered: a leader ignores those acks too */
		if (c->request_id != rid || ++c->opnum > r->cl.f)
			r->relay.late++;
		else if (c->opnum == r->cl.f)
			relay_send(r, buf, len, &c->addr);
		return;
	}
	struct el_client *c = el_ctable_upsert(&r->relay.clients, cid);
	c->addr = *src;
	c->has_addr = 1;
	if (c->request_id != rid) { /* a retry keeps its count */
		c->request_id = rid;
		c->opnum = 0;
	}
	r->relay.forwarded++;
	for (uint32_t i = 1; i < r->cl.n; i++)
		relay_send(r, buf, len, &r->cl.addrs[i]);
}

void el_relay_handle(struct replica *r, const void *buf, size_t len, const struct sockaddr_in *src)
{
	uint64_t rid;
	uint64_t cid = request_client(buf, len, &rid);
	if (!cid) {
		r->relay.refused++; /* only client requests travel the relay */
		return;
	}
	if (r->o.index != 0) {
		if (el_peer_index(r->cl.addrs, r->cl.n, src) != 0) {
			r->relay.refused++;
			return;
		}
		relay_send(r, buf, len, &r->cl.addrs[0]);
		return;
	}
	relay_leader(r, buf, len, src, cid, rid);
}
