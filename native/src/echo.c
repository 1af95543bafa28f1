/* SPDX-License-Identifier: MIT
 *
 * echo.c - the bench's floor: a UDP echo server on a replica's address.
 * Every datagram goes back to its sender unchanged, received and sent in
 * batches the way the replica does (recvmmsg/sendmmsg), so `client --echo`
 * against it measures what one round trip through this lab's network and
 * sockets costs, with no protocol on top.
 *
 *   echo -l <ip>:<port> [--cpu K]
 *
 * Runs until SIGTERM/SIGINT; prints `echo ready on <ip>:<port>` on stderr
 * when bound and `echo: rx N tx N` when it exits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#define BATCH 32
#define BUF 2048

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int usage(const char *why, const char *arg)
{
	if (why)
		fprintf(stderr, "echo: %s, got '%s'\n", why, arg ? arg : "");
	fprintf(why ? stderr : stdout, "usage: echo -l <ip>:<port> [--cpu K]\n");
	return why ? 2 : 0;
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char ip[64];
	const char *colon = strrchr(s, ':');
	uint64_t port;
	if (!colon || (size_t)(colon - s) >= sizeof(ip) || el_parse_u64(colon + 1, 1, 65535, &port))
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = 0;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "cpu", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct sockaddr_in me;
	int have = 0, c;
	uint64_t cpu = UINT64_MAX;
	while ((c = getopt_long(argc, argv, "l:h", lo, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (parse_addr(optarg, &me))
				return usage("-l must be <ipv4>:<port>", optarg);
			have = 1;
			break;
		case 'C':
			if (el_parse_u64(optarg, 0, 4095, &cpu))
				return usage("--cpu must be a CPU number", optarg);
			break;
		case 'h': return usage(NULL, NULL);
		default: return usage("unknown option", argv[optind - 1]);
		}
	}
	if (!have || optind < argc)
		return usage("give -l <ip>:<port> and nothing else", optind < argc ? argv[optind] : "");
	if (cpu != UINT64_MAX) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET((int)cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			fprintf(stderr, "echo: --cpu %" PRIu64 ": %s (not pinned)\n", cpu, strerror(errno));
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&me, sizeof(me))) {
		fprintf(stderr, "echo: bind %s: %s\n", argv[optind - 1], strerror(errno));
		return 1;
	}
	char addr[EL_ADDR_STRLEN];
	fprintf(stderr, "echo ready on %s\n", el_addr_str(me.sin_addr.s_addr, me.sin_port, addr, sizeof(addr)));

	static uint8_t bufs[BATCH][BUF];
	struct sockaddr_in from[BATCH];
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	uint64_t rx = 0, tx = 0;
	while (!stop) {
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = BUF };
			msgs[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof(from[i]), .msg_iov = &iov[i], .msg_iovlen = 1 };
		}
		int n = recvmmsg(s, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EINTR) {
				fprintf(stderr, "echo: recvmmsg: %s\n", strerror(errno));
				return 1;
			}
			continue;
		}
		rx += (uint64_t)n;
		for (int i = 0; i < n; i++)
			iov[i].iov_len = msgs[i].msg_len; /* send back exactly what came */
		int sent = sendmmsg(s, msgs, (unsigned)n, 0);
		if (sent > 0)
			tx += (uint64_t)sent;
	}
	fprintf(stderr, "echo: rx %" PRIu64 " tx %" PRIu64 "\n", rx, tx);
	close(s);
	return 0;
}
