/* SPDX-License-Identifier: MIT
 * Unit tests for peer.c: which source address may send which message. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <string.h>

#include "harness.h"
#include "peer.h"
#include "wire.h"

static struct sockaddr_in sa(const char *ip, uint16_t port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static size_t dgram(uint8_t *buf, uint8_t type, uint8_t replica)
{
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.replica = replica;
	h.opnum = UINT64_MAX;
	struct el_builder b;
	el_build_start(&b, buf, EL_MAX_DGRAM, &h);
	return el_build_finish(&b);
}

static void test_replica_messages_need_their_address(void)
{
	const struct sockaddr_in addrs[3] = { sa("10.0.0.1", 51000), sa("10.0.0.2", 51000), sa("10.0.0.3", 51000) };
	static uint8_t buf[EL_MAX_DGRAM];
	struct el_peer_claim c;
	struct sockaddr_in client = sa("10.0.0.9", 40000);
	for (uint8_t t = EL_MSG_REPLY; t <= EL_MSG_TYPE_MAX; t++) {
		size_t len = dgram(buf, t, 1);
		struct sockaddr_in r1 = addrs[1], r1_other_port = sa("10.0.0.2", 51001), r2 = addrs[2];
		CHECK_EQ(el_peer_check(addrs, 3, buf, len, &r1, &c), EL_PEER_OK);
		/* the attack: a PrepareOK naming a follower, from the client node */
		memset(&c, 0, sizeof(c));
		CHECK_EQ(el_peer_check(addrs, 3, buf, len, &client, &c), EL_PEER_WRONG_SOURCE);
		CHECK_EQ(c.type, t);
		CHECK_EQ(c.replica, 1);
		/* the right node, another socket: not the replica's */
		CHECK_EQ(el_peer_check(addrs, 3, buf, len, &r1_other_port, &c), EL_PEER_WRONG_SOURCE);
		/* another replica writing replica 1's index */
		CHECK_EQ(el_peer_check(addrs, 3, buf, len, &r2, &c), EL_PEER_WRONG_SOURCE);
	}
	/* past the cluster, short, bad magic: the decoder's to reject (as malformed) */
	size_t len = dgram(buf, EL_MSG_PREPARE_OK, 7);
	CHECK_EQ(el_peer_check(addrs, 3, buf, len, &client, &c), EL_PEER_OK);
	len = dgram(buf, EL_MSG_PREPARE_OK, 1);
	CHECK_EQ(el_peer_check(addrs, 3, buf, EL_HDR_LEN - 1, &client, &c), EL_PEER_OK);
	buf[0] ^= 1;
	CHECK_EQ(el_peer_check(addrs, 3, buf, len, &client, &c), EL_PEER_OK);
}

static void test_requests_only_from_clients(void)
{
	const struct sockaddr_in addrs[3] = { sa("127.0.0.1", 27100), sa("127.0.0.1", 27101), sa("127.0.0.1", 27102) };
	static uint8_t buf[EL_MAX_DGRAM];
	struct el_peer_claim c;
	size_t len = dgram(buf, EL_MSG_REQUEST, EL_NO_REPLICA);
	/* a loopback lab: clients share the replicas' IP, not their ports */
	struct sockaddr_in client = sa("127.0.0.1", 45000);
	CHECK_EQ(el_peer_check(addrs, 3, buf, len, &client, &c), EL_PEER_OK);
	for (uint32_t i = 0; i < 3; i++) {
		memset(&c, 0, sizeof(c));
		CHECK_EQ(el_peer_check(addrs, 3, buf, len, &addrs[i], &c), EL_PEER_REPLICA_REQUEST);
		CHECK_EQ(c.replica, i);
	}
}

void peer_tests(int *passed, int *failed);
void peer_tests(int *passed, int *failed)
{
	static const struct h_test tests[] = {
		{ "peer: a replica message only from that replica's address and port", test_replica_messages_need_their_address },
		{ "peer: a client request only from an address that is no replica's", test_requests_only_from_clients },
	};
	h_run(tests, sizeof(tests) / sizeof(tests[0]), passed, failed);
}
