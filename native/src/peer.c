/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "peer.h"
#include "../include/el_proto.h"

#include <endian.h>
#include <string.h>

static int same(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

int el_peer_index(const struct sockaddr_in *addrs, uint32_t n, const struct sockaddr_in *src)
{
	for (uint32_t i = 0; i < n; i++)
		if (same(&addrs[i], src))
			return (int)i;
	return -1;
}

int el_peer_check(const struct sockaddr_in *addrs, uint32_t n, const void *buf, size_t len,
		  const struct sockaddr_in *src, struct el_peer_claim *claim)
{
	const uint8_t *p = buf;
	uint32_t magic;
	if (len < EL_HDR_LEN || !src)
		return EL_PEER_OK;
	memcpy(&magic, p, sizeof(magic));
	if (le32toh(magic) != EL_MAGIC || p[4] != EL_VERSION)
		return EL_PEER_OK;
	claim->type = p[5];
	if (p[5] == EL_MSG_REQUEST) {
		int from = el_peer_index(addrs, n, src);
		if (from < 0)
			return EL_PEER_OK;
		claim->replica = (uint32_t)from;
		return EL_PEER_REPLICA_REQUEST;
	}
	claim->replica = p[7];
	if (p[7] >= n)
		return EL_PEER_OK;
	return same(&addrs[p[7]], src) ? EL_PEER_OK : EL_PEER_WRONG_SOURCE;
}

const char *el_peer_strerror(int verdict)
{
	switch (verdict) {
	case EL_PEER_OK: return "ok";
	case EL_PEER_WRONG_SOURCE: return "a replica message from another address than that replica's";
	case EL_PEER_REPLICA_REQUEST: return "a client request from a replica's address";
	default: return "unknown verdict";
	}
}
