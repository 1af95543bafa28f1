// SPDX-License-Identifier: MIT
/*
 * el-probe - sends electrode-lab frames, for checks where python is not at
 * hand (check-kernel's guest: busybox, our binaries and nothing else). The
 * host tests use bpf/tests/elpkt.py, which also captures and parses.
 *
 *   el-probe raw --ifname IF --src MAC,IP,PORT --dst MAC,IP,PORT [fields] [--count N]
 *       the whole frame built here (IP and UDP checksums computed), sent on
 *       an AF_PACKET socket: it goes out through IF's TC egress hook and
 *       arrives at its peer's XDP hook.
 *   el-probe udp --src IP,PORT --dst IP,PORT [fields] [--count N]
 *       through a UDP socket bound to src: the kernel builds the skb.
 *
 * fields: --type T --flags F --replica R --view V --opnum N --commit C --aux A
 *         --payload-len L (zero bytes after el_hdr)
 *         --valid-entry: the L payload bytes are ONE well-formed put entry (L >= 23),
 *         so the fast reply acknowledges it (it refuses entries the replica would)
 * It only sends where it is told to: the caller's own namespace or guest.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../native/include/el_proto.h"

struct endpoint {
	uint8_t mac[6];
	struct in_addr ip;
	uint16_t port;
};

/* One put entry filling exactly plen bytes: client 1, request opnum (or 1),
 * a key of up to 8 bytes and the rest as its value (what wire.c accepts). */
static void valid_entry(uint8_t *p, unsigned long plen, uint64_t opnum)
{
	uint16_t len = (uint16_t)(plen - 18);
	uint8_t kl = plen - 22 < 8 ? (uint8_t)(plen - 22) : 8;
	uint16_t vl = (uint16_t)(plen - 22 - kl);
	uint64_t cid = 1, rid = opnum ? opnum : 1;

	memcpy(p, &cid, 8);
	memcpy(p + 8, &rid, 8);
	memcpy(p + 16, &len, 2);
	p[18] = 1; /* put */
	p[19] = kl;
	memcpy(p + 20, &vl, 2);
	memset(p + 22, 'k', kl);
	memset(p + 22 + kl, 'v', vl);
}

static int bad(const char *what, const char *v)
{
	fprintf(stderr, "el-probe: %s: '%s'\n", what, v);
	return 2;
}

static int parse_ep(const char *s, struct endpoint *e, int with_mac)
{
	char ip[64];
	unsigned int m[6], port;
	int n = with_mac ? sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x,%63[^,],%u", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], ip, &port)
			 : sscanf(s, "%63[^,],%u", ip, &port);

	if (n != (with_mac ? 8 : 2) || port < 1 || port > 65535 || inet_pton(AF_INET, ip, &e->ip) != 1)
		return -1;
	for (int i = 0; with_mac && i < 6; i++)
		e->mac[i] = (uint8_t)m[i];
	e->port = (uint16_t)port;
	return 0;
}

static uint32_t sum16(const void *p, size_t n, uint32_t s)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		s += (uint32_t)(b[n - 1] << 8);
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

int main(int argc, char **argv)
{
	enum { O_IF = 256, O_SRC, O_DST, O_TYPE, O_FLAGS, O_REP, O_VIEW, O_OP, O_COMMIT, O_AUX, O_PLEN, O_COUNT, O_VALID };
	static const struct option lo[] = {
		{ "ifname", required_argument, 0, O_IF }, { "src", required_argument, 0, O_SRC },
		{ "dst", required_argument, 0, O_DST },   { "type", required_argument, 0, O_TYPE },
		{ "flags", required_argument, 0, O_FLAGS }, { "replica", required_argument, 0, O_REP },
		{ "view", required_argument, 0, O_VIEW }, { "opnum", required_argument, 0, O_OP },
		{ "commit", required_argument, 0, O_COMMIT }, { "aux", required_argument, 0, O_AUX },
		{ "payload-len", required_argument, 0, O_PLEN }, { "count", required_argument, 0, O_COUNT },
		{ "valid-entry", no_argument, 0, O_VALID }, { 0, 0, 0, 0 },
	};
	const char *mode, *ifname = NULL, *src_s = NULL, *dst_s = NULL;
	struct endpoint src, dst;
	struct el_hdr h;
	unsigned long long v = 0;
	unsigned long count = 1, plen = 0;
	uint8_t frame[1600];
	int c, raw, s, valid = 0;

	if (argc < 2 || (strcmp(argv[1], "raw") && strcmp(argv[1], "udp"))) {
		fputs("usage: el-probe raw|udp ... (see the header of bpf/tests/el-probe.c)\n", stderr);
		return 2;
	}
	mode = argv[1];
	raw = !strcmp(mode, "raw");
	memset(&h, 0, sizeof(h));
	h.magic = EL_MAGIC;
	h.version = EL_VERSION;
	h.type = EL_MSG_PREPARE;
	h.aux = 1;
	h.opnum = 1;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *end = NULL;

		if (c >= O_TYPE && c != O_VALID) {
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || !end || *end)
				return bad("not a number", optarg);
		}
		switch (c) {
		case O_IF: ifname = optarg; break;
		case O_SRC: src_s = optarg; break;
		case O_DST: dst_s = optarg; break;
		case O_TYPE: h.type = (uint8_t)v; break;
		case O_FLAGS: h.flags = (uint8_t)v; break;
		case O_REP: h.replica = (uint8_t)v; break;
		case O_VIEW: h.view = v; break;
		case O_OP: h.opnum = v; break;
		case O_COMMIT: h.commit = v; break;
		case O_AUX: h.aux = (uint32_t)v; break;
		case O_PLEN: plen = v; break;
		case O_COUNT: count = v; break;
		case O_VALID: valid = 1; break;
		default: return 2;
		}
	}
	if (!src_s || !dst_s || parse_ep(src_s, &src, raw) || parse_ep(dst_s, &dst, raw))
		return bad(raw ? "--src/--dst must be MAC,IP,PORT" : "--src/--dst must be IP,PORT", src_s ? src_s : "");
	if (plen > 1400)
		return bad("--payload-len is at most 1400", "");
	if (valid && (plen < 23 || plen > 18 + 4 + 8 + 1024))
		return bad("--valid-entry needs --payload-len 23..1054", "");
	if (raw && !ifname)
		return bad("raw needs --ifname", "");
	h.payload_len = (uint32_t)plen;

	if (raw) {
		struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_halen = 6 };
		size_t udp_len = 8 + EL_HDR_LEN + plen, ip_len = 20 + udp_len, len = 14 + ip_len;
		uint8_t *ip = frame + 14, *udp = ip + 20;

		sll.sll_ifindex = (int)if_nametoindex(ifname);
		if (!sll.sll_ifindex)
			return bad("no such interface", ifname);
		memcpy(sll.sll_addr, dst.mac, 6);
		s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
		if (s < 0) {
			perror("el-probe: socket(AF_PACKET)");
			return 1;
		}
		for (unsigned long i = 0; i < count; i++) {
			uint16_t w;
			uint32_t ps;

			memset(frame, 0, sizeof(frame));
			memcpy(frame, dst.mac, 6);
			memcpy(frame + 6, src.mac, 6);
			frame[12] = 0x08;
			ip[0] = 0x45;
			w = htons((uint16_t)ip_len);
			memcpy(ip + 2, &w, 2);
			ip[8] = 64;
			ip[9] = 17;
			memcpy(ip + 12, &src.ip, 4);
			memcpy(ip + 16, &dst.ip, 4);
			w = htons(fold(sum16(ip, 20, 0)));
			memcpy(ip + 10, &w, 2);
			w = htons(src.port);
			memcpy(udp, &w, 2);
			w = htons(dst.port);
			memcpy(udp + 2, &w, 2);
			w = htons((uint16_t)udp_len);
			memcpy(udp + 4, &w, 2);
			memcpy(udp + 8, &h, EL_HDR_LEN);
			if (valid)
				valid_entry(udp + 8 + EL_HDR_LEN, plen, h.opnum);
			ps = sum16(ip + 12, 8, 17 + (uint32_t)udp_len);
			w = htons(fold(sum16(udp, udp_len, ps)) ?: 0xffff);
			memcpy(udp + 6, &w, 2);
			if (sendto(s, frame, len, 0, (struct sockaddr *)&sll, sizeof(sll)) != (ssize_t)len) {
				perror("el-probe: sendto");
				return 1;
			}
			h.opnum++;
		}
	} else {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr = src.ip, .sin_port = htons(src.port) };
		struct sockaddr_in b = { .sin_family = AF_INET, .sin_addr = dst.ip, .sin_port = htons(dst.port) };

		s = socket(AF_INET, SOCK_DGRAM, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a))) {
			perror("el-probe: udp socket");
			return 1;
		}
		for (unsigned long i = 0; i < count; i++) {
			memset(frame, 0, sizeof(frame));
			memcpy(frame, &h, EL_HDR_LEN);
			if (valid)
				valid_entry(frame + EL_HDR_LEN, plen, h.opnum);
			if (sendto(s, frame, EL_HDR_LEN + plen, 0, (struct sockaddr *)&b, sizeof(b)) < 0) {
				perror("el-probe: sendto");
				return 1;
			}
			h.opnum++;
		}
	}
	close(s);
	return 0;
}
