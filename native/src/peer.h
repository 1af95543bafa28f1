/* SPDX-License-Identifier: MIT
 *
 * peer.h - who may send what, by UDP source address: a replica message
 * (every type but REQUEST) is taken only from the configured address and
 * port of the replica index it names, a client REQUEST only from an address
 * that is no replica's. The lab's version of authenticated peers: it stops a
 * sender on the client node that writes another replica's index into a
 * datagram, not one that also forges its IP source address (README
 * "Authenticated peers"). The eBPF fast paths apply the same rule to the
 * frames they act on (bpf/el_common.h peer_sent()).
 */
#ifndef EL_PEER_H
#define EL_PEER_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

enum el_peer_verdict {
	EL_PEER_OK = 0,        /* the sender may send this (or it is not ours to
	                        * judge: too short, bad magic, an index past the
	                        * cluster; the decoder rejects those) */
	EL_PEER_WRONG_SOURCE,  /* a replica message not from that replica's address */
	EL_PEER_REPLICA_REQUEST, /* a client request from a replica's address */
};

struct el_peer_claim {
	uint8_t type;          /* el_hdr.type of the datagram                    */
	uint32_t replica;      /* the index it names (EL_PEER_WRONG_SOURCE), or the
	                        * replica whose address sent it (REPLICA_REQUEST) */
};

/* addrs: the n configured replica addresses (struct el_cluster). */
int el_peer_check(const struct sockaddr_in *addrs, uint32_t n, const void *buf, size_t len,
		  const struct sockaddr_in *src, struct el_peer_claim *claim);

/* The index of the replica configured at `src` (address and port), or -1 when it is no replica's. */
int el_peer_index(const struct sockaddr_in *addrs, uint32_t n, const struct sockaddr_in *src);

const char *el_peer_strerror(int verdict);

#endif
