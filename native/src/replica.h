/* SPDX-License-Identifier: MIT
 *
 * replica.h - the replica process around the protocol core (vr.h): options,
 * the config, the UDP socket, the eBPF pins, the committed-log dump, fault
 * injection and ONE single-threaded epoll loop (replica.c).
 */
#ifndef EL_REPLICA_H
#define EL_REPLICA_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fastpath.h"
#include "vr.h"

#define RECV_BATCH   16
#define RECV_ROUNDS  8
#define TICK_US      5000u
/* The kernel acknowledges for us until this long after the last tick. */
#define LEASE_NS     (50ull * 1000 * 1000)

struct opts {
	const char *config;
	long index;
	uint32_t batch;
	long cpu;
	const char *pin_dir;
	int fast_broadcast, fast_quorum, fast_reply;
	uint64_t crash_after;
	double drop_rate, dup_rate, reorder_rate;
	const char *dump_log;
	uint64_t heartbeat_us, vc_timeout_us, retransmit_us;
	int relay_floor;        /* --relay-floor: relay.c instead of the protocol */
};

/* --relay-floor: where each client's requests come back to, and counts */
struct relay_state {
	struct el_ctable clients;
	uint64_t forwarded, sent, send_failed, late, refused;
};

struct replica {
	struct opts o;
	struct el_cluster cl;
	struct vr vr;
	int sock, tfd, sfd, epfd;
	struct el_fastpath *fp;
	uint64_t now, rng;
	uint64_t stat_rx, stat_dropped, stat_dup, stat_reordered, quiesces, quiesce_max_ns;
	/* datagrams whose source address is not the sender they claim (peer.h) */
	uint64_t stat_spoofed, spoofed_unlogged, spoof_logged_us;
	/* --reorder-rate: one datagram held back and handled after the next */
	uint8_t *held;
	size_t held_len;
	struct sockaddr_in held_src;
	int stop;
	struct relay_state relay;
	/* --dump-log: committed ops as they commit, written in whole lines */
	int dump_fd;
	size_t dump_len;
	char dump_buf[1 << 16];
};

#endif
