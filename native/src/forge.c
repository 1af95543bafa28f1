/* SPDX-License-Identifier: MIT
 *
 * forge.c - the bench's `forge` nemesis: well-formed lies on the lab network.
 * Run on the client node, it fires forged replica messages at every replica
 * for a while, from the client's own address and, through a raw IP socket,
 * with a replica's IP address and UDP port as the source (the frame keeps the
 * client's MAC, so the lab's switch keeps learning where each replica is).
 *
 *   forge -c <replica.config> --view V [--seconds S] [--rate PPS] [--seed N]
 *
 * Every lie is one the replicas must drop and count (the `stats:` line each
 * prints at exit), and none can be made true by its sender's address alone:
 *
 *   ack-beyond    PrepareOK from follower k's address for an op near 2^64
 *                 -> the leader: "acks beyond the log"
 *   spoofed       PrepareOK, StartViewChange, Commit naming a replica, from
 *                 the client's address -> everyone: "spoofed"
 *   other-index   PrepareOK from follower k's address naming follower j
 *                 (a copy of a real ack with another index) -> the leader:
 *                 "spoofed"
 *   view-jump     StartViewChange for view V + 2^40 from replica k's
 *                 address -> every other replica: "view claims refused" or
 *                 "view changes not joined (leader alive)"
 *   bad-entries   Prepare from the leader's address whose one entry runs
 *                 past the datagram -> the followers: "malformed"
 *   not-leader    NewState and a snapshot chunk nobody asked for, from
 *                 follower k's address -> the other followers: "leader-only
 *                 messages from another replica"
 *
 * Never sent: a well-formed Prepare, Commit, NewState or snapshot chunk from
 * the leader's address in its view, or a DoViewChange/StartView for a view
 * an honest timeout can reach. With addresses as the only credential (the
 * README's threat model) no replica can tell those from the leader's own.
 *
 * Prints `forge: sent N (...)` and one JSON line on stdout when it ends
 * (after S seconds, or at SIGTERM/SIGINT). Needs CAP_NET_RAW.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "snapshot.h"
#include "util.h"
#include "wire.h"

enum lie { ACK_BEYOND, SPOOFED, OTHER_INDEX, VIEW_JUMP, BAD_ENTRIES, NOT_LEADER, N_LIES };
static const char *const lie_name[N_LIES] = { "ack-beyond", "spoofed", "other-index", "view-jump", "bad-entries",
					      "not-leader" };

/* far above any op a lab logs, with room to number 2^32 datagrams upwards */
#define TOP_OP (UINT64_MAX - (1ull << 32))
#define FAR_OP (1ull << 50)
#define VIEW_JUMP_BY (1ull << 40)

struct forge {
	struct el_cluster cl;
	uint64_t view, seq, rng;
	uint32_t leader;
	int udp, raw;
	uint64_t sent[N_LIES], errors;
	int last_errno;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int usage(FILE *to)
{
	fprintf(to, "usage: forge -c <replica.config> --view V [--seconds S] [--rate PPS] [--seed N]\n"
		    "  fires forged replica messages at every replica of the config for S seconds\n"
		    "  (0.01-3600, default 2) at PPS datagrams a second (1-1000000, default 2000);\n"
		    "  V is the lab's current view (its leader is replica V mod n)\n");
	return to == stdout ? 0 : 2;
}

static struct el_hdr lie_hdr(uint8_t type, uint32_t replica, uint64_t view, uint64_t opnum)
{
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.magic = EL_MAGIC;
	h.version = EL_VERSION;
	h.type = type;
	h.replica = (uint8_t)replica;
	h.view = view;
	h.opnum = opnum;
	return h;
}

/* An IPv4 + UDP datagram from `from` to `to` (checksums: the kernel fills
 * the IP one; a zero UDP checksum means none, which IPv4 allows). */
static size_t wrap(uint8_t *pkt, size_t cap, const struct sockaddr_in *from, const struct sockaddr_in *to,
		   const uint8_t *payload, size_t len)
{
	struct iphdr ip;
	struct udphdr udp;
	size_t total = sizeof(ip) + sizeof(udp) + len;
	if (total > cap)
		return 0;
	memset(&ip, 0, sizeof(ip));
	ip.version = 4;
	ip.ihl = 5;
	ip.ttl = 64;
	ip.protocol = IPPROTO_UDP;
	ip.tot_len = htons((uint16_t)total);
	ip.saddr = from->sin_addr.s_addr;
	ip.daddr = to->sin_addr.s_addr;
	memset(&udp, 0, sizeof(udp));
	udp.source = from->sin_port;
	udp.dest = to->sin_port;
	udp.len = htons((uint16_t)(sizeof(udp) + len));
	memcpy(pkt, &ip, sizeof(ip));
	memcpy(pkt + sizeof(ip), &udp, sizeof(udp));
	memcpy(pkt + sizeof(ip) + sizeof(udp), payload, len);
	return total;
}

/* Sends one lie to replica `to`: from replica `as` (raw) or, as < 0, from our own socket. */
static void send_lie(struct forge *fg, enum lie kind, int as, uint32_t to, const uint8_t *msg, size_t len)
{
	const struct sockaddr_in *dst = &fg->cl.addrs[to];
	uint8_t pkt[EL_MAX_DGRAM + 64];
	ssize_t rc;
	if (as < 0) {
		rc = sendto(fg->udp, msg, len, 0, (const struct sockaddr *)dst, sizeof(*dst));
	} else {
		size_t n = wrap(pkt, sizeof(pkt), &fg->cl.addrs[as], dst, msg, len);
		rc = sendto(fg->raw, pkt, n, 0, (const struct sockaddr *)dst, sizeof(*dst));
	}
	if (rc < 0) {
		fg->errors++;
		fg->last_errno = errno;
		return;
	}
	fg->sent[kind]++;
}

static size_t header_only(uint8_t *buf, struct el_hdr h)
{
	struct el_builder b;
	el_build_start(&b, buf, EL_MAX_DGRAM, &h);
	return el_build_finish(&b);
}

/* pacing: one datagram every 1/rate s, against the clock, not a sleep per send */
static struct timespec next_at;
static long gap_ns;

static void paced(void)
{
	next_at.tv_nsec += gap_ns;
	while (next_at.tv_nsec >= 1000000000L) {
		next_at.tv_nsec -= 1000000000L;
		next_at.tv_sec++;
	}
	while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next_at, NULL) == EINTR)
		;
}

/* A follower other than `not` (never the leader); any follower if none is left. */
static uint32_t follower(const struct forge *fg, uint64_t pick, uint32_t not)
{
	uint32_t n = fg->cl.n;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = (uint32_t)((pick + i) % n);
		if (k != fg->leader && k != not)
			return k;
	}
	return (fg->leader + 1) % n;
}

static void lie_ack_beyond(struct forge *fg, uint64_t s, uint32_t k)
{
	uint8_t msg[EL_MAX_DGRAM];
	paced();
	send_lie(fg, ACK_BEYOND, (int)k, fg->leader, msg,
		 header_only(msg, lie_hdr(EL_MSG_PREPARE_OK, k, fg->view, TOP_OP + s)));
}

static void lie_spoofed(struct forge *fg, uint64_t s)
{
	static const uint8_t types[] = { EL_MSG_PREPARE_OK, EL_MSG_START_VIEW_CHANGE, EL_MSG_COMMIT };
	uint8_t msg[EL_MAX_DGRAM];
	uint32_t n = fg->cl.n;
	for (uint32_t t = 0; t < n; t++) {
		uint8_t type = types[(s + t) % sizeof(types)];
		uint32_t named = type == EL_MSG_COMMIT ? fg->leader : (t + 1) % n;
		struct el_hdr h = lie_hdr(type, named, type == EL_MSG_START_VIEW_CHANGE ? fg->view + 1 : fg->view, 1);
		h.commit = type == EL_MSG_COMMIT ? FAR_OP : 0;
		paced();
		send_lie(fg, SPOOFED, -1, t, msg, header_only(msg, h));
	}
}

static void lie_other_index(struct forge *fg, uint32_t k, uint32_t j)
{
	uint8_t msg[EL_MAX_DGRAM];
	if (j == k)
		return;
	paced();
	send_lie(fg, OTHER_INDEX, (int)k, fg->leader, msg, header_only(msg, lie_hdr(EL_MSG_PREPARE_OK, j, fg->view, 1)));
}

static void lie_view_jump(struct forge *fg, uint64_t s, uint32_t k)
{
	uint8_t msg[EL_MAX_DGRAM];
	size_t len = header_only(msg, lie_hdr(EL_MSG_START_VIEW_CHANGE, k, fg->view + VIEW_JUMP_BY + s % 1024, 0));
	for (uint32_t t = 0; t < fg->cl.n; t++)
		if (t != k) {
			paced();
			send_lie(fg, VIEW_JUMP, (int)k, t, msg, len);
		}
}

/* One entry whose length runs past the datagram: the decoder refuses it,
 * and so must the kernel's fast reply (it may not ack what user space drops). */
static void lie_bad_entries(struct forge *fg, uint64_t s)
{
	uint8_t msg[EL_MAX_DGRAM], entry[EL_ENTRY_HDR_LEN];
	struct el_hdr h = lie_hdr(EL_MSG_PREPARE, fg->leader, fg->view, FAR_OP + s);
	struct el_builder b;
	h.aux = 1;
	memset(entry, 0, sizeof(entry));
	entry[16] = 0xa0; /* len (le16): 4000 bytes, of which none follow */
	entry[17] = 0x0f;
	el_build_start(&b, msg, sizeof(msg), &h);
	el_build_bytes(&b, entry, sizeof(entry));
	size_t len = el_build_finish(&b);
	for (uint32_t t = 0; t < fg->cl.n; t++)
		if (t != fg->leader) {
			paced();
			send_lie(fg, BAD_ENTRIES, (int)fg->leader, t, msg, len);
		}
}

/* State nobody asked for, from a follower: alternately a NewState and a
 * one-chunk snapshot whose checksum is right. */
static void lie_not_leader(struct forge *fg, uint64_t s, uint32_t k)
{
	uint8_t msg[EL_MAX_DGRAM], chunk[64], op[32];
	struct el_builder b;
	struct el_hdr h;
	if (s & 1) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (uint8_t)el_rand(&fg->rng);
		h = lie_hdr(EL_MSG_SNAPSHOT_CHUNK, k, fg->view, FAR_OP + s);
		h.client_id = sizeof(chunk);
		h.request_id = el_snap_sum(chunk, sizeof(chunk));
		el_build_start(&b, msg, sizeof(msg), &h);
		el_build_bytes(&b, chunk, sizeof(chunk));
	} else {
		h = lie_hdr(EL_MSG_NEW_STATE, k, fg->view, FAR_OP + s);
		h.request_id = EL_STATE_LOG;
		h.aux = 1;
		size_t oplen = el_op_encode(op, sizeof(op), EL_OP_PUT, "forged", 6, "lie", 3);
		el_build_start(&b, msg, sizeof(msg), &h);
		el_build_entry(&b, 1, 1, op, (uint16_t)oplen);
	}
	size_t len = el_build_finish(&b);
	for (uint32_t t = 0; t < fg->cl.n; t++)
		if (t != fg->leader && t != k) {
			paced();
			send_lie(fg, NOT_LEADER, (int)k, t, msg, len);
		}
}

/* One round: every lie once, at every replica it is meant for. */
static void round_of_lies(struct forge *fg)
{
	uint64_t s = fg->seq++;
	uint32_t k = follower(fg, s, UINT32_MAX), j = follower(fg, s + 1, k);
	lie_ack_beyond(fg, s, k);
	lie_spoofed(fg, s);
	lie_other_index(fg, k, j);
	lie_view_jump(fg, s, k);
	lie_bad_entries(fg, s);
	lie_not_leader(fg, s, k);
}

static void report(const struct forge *fg)
{
	uint64_t total = 0;
	for (int i = 0; i < N_LIES; i++)
		total += fg->sent[i];
	printf("forge: sent %llu datagrams (", (unsigned long long)total);
	for (int i = 0; i < N_LIES; i++)
		printf("%s%s %llu", i ? ", " : "", lie_name[i], (unsigned long long)fg->sent[i]);
	printf("); send errors %llu%s%s\n", (unsigned long long)fg->errors, fg->errors ? ", last: " : "",
	       fg->errors ? strerror(fg->last_errno) : "");
	printf("{\"forge\":{\"sent\":%llu", (unsigned long long)total);
	for (int i = 0; i < N_LIES; i++)
		printf(",\"%s\":%llu", lie_name[i], (unsigned long long)fg->sent[i]);
	printf(",\"errors\":%llu,\"view\":%llu,\"leader\":%u}}\n", (unsigned long long)fg->errors,
	       (unsigned long long)fg->view, fg->leader);
	fflush(stdout);
}

struct forge_opts {
	const char *config;
	uint64_t view, rate, seed;
	double seconds;
	int have_view;
};

static int parse_opts(int argc, char **argv, struct forge_opts *o)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' }, { "view", required_argument, NULL, 'v' },
		{ "seconds", required_argument, NULL, 's' }, { "rate", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 'S' },   { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	o->seconds = 2;
	o->rate = 2000;
	o->seed = 1;
	while ((c = getopt_long(argc, argv, "c:h", lo, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'v': bad = el_parse_u64(optarg, 0, EL_VIEW_LIMIT - VIEW_JUMP_BY * 2, &o->view); o->have_view = 1; break;
		case 's': bad = el_parse_double(optarg, 0.01, 3600, &o->seconds); break;
		case 'r': bad = el_parse_u64(optarg, 1, 1000000, &o->rate); break;
		case 'S': bad = el_parse_u64(optarg, 0, UINT64_MAX, &o->seed); break;
		case 'h': exit(usage(stdout));
		default: return usage(stderr);
		}
		if (bad) {
			fprintf(stderr, "forge: bad value '%s' (see forge --help for the ranges)\n", optarg);
			return 2;
		}
	}
	if (!o->config || !o->have_view || optind != argc) {
		fprintf(stderr, "forge: %s\n", !o->config ? "-c <replica.config> is required" : !o->have_view ? "--view V is required (the lab's current view)" : "unexpected argument");
		return usage(stderr);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct forge_opts o;
	struct forge fg;
	char err[256];
	int rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc;
	memset(&fg, 0, sizeof(fg));
	if (el_cluster_load(o.config, &fg.cl, err, sizeof(err))) {
		fprintf(stderr, "forge: %s\n", err);
		return 2;
	}
	fg.view = o.view;
	fg.leader = (uint32_t)(o.view % fg.cl.n);
	fg.rng = o.seed ? o.seed : 1;
	fg.udp = socket(AF_INET, SOCK_DGRAM, 0);
	fg.raw = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fg.udp < 0 || fg.raw < 0) {
		fprintf(stderr, "forge: cannot open a %s socket: %s (forging source addresses needs CAP_NET_RAW: run it as root)\n",
			fg.udp < 0 ? "UDP" : "raw IP", strerror(errno));
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	gap_ns = (long)(1000000000ull / o.rate);
	clock_gettime(CLOCK_MONOTONIC, &next_at);
	uint64_t until = el_now_us() + (uint64_t)(o.seconds * 1e6);
	while (!stop && el_now_us() < until)
		round_of_lies(&fg);
	report(&fg);
	close(fg.udp);
	close(fg.raw);
	el_cluster_free(&fg.cl);
	return 0;
}
