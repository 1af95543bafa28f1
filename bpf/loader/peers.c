// SPDX-License-Identifier: MIT
/*
 * peers.c - the lab's peers file (files/peers.table): the cluster and every replica's
 * address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "loader.h"

int read_peers(const char *file, struct peers *pt)
{
	char line[512];
	FILE *fp = fopen(file, "r");
	int ln = 0, err = -1;
	bool have_cluster = false;

	if (!fp)
		return fail("peers file %s: %s; it is the lab's files/peers.table (run `electrode-lab up` first)", file,
			    strerror(errno));
	memset(pt, 0, sizeof(*pt));
	while (fgets(line, sizeof(line), fp)) {
		char w0[32], w2[64], w3[64], extra[8];
		unsigned long a, b, port;
		struct in_addr ip;

		ln++;
		if (sscanf(line, "%31s", w0) != 1 || w0[0] == '#')
			continue;
		if (!strcmp(w0, "cluster")) {
			if (sscanf(line, "%*s %lu %lu %7s", &a, &b, extra) != 2) {
				fail("%s:%d: expected `cluster <n> <f>`", file, ln);
				goto out;
			}
			if (a < 1 || a > EL_MAX_REPLICAS) {
				fail("%s:%d: cluster size %lu out of range 1..%d", file, ln, a, EL_MAX_REPLICAS);
				goto out;
			}
			/* quorums of f+1 out of 2f+1 intersect; other sizes do not */
			if (2 * b + 1 != a) {
				fail("%s:%d: f=%lu with %lu replicas: quorums of f+1 intersect only with exactly 2f+1 = %lu replicas",
				     file, ln, b, a, 2 * b + 1);
				goto out;
			}
			pt->n = (__u32)a;
			pt->f = (__u32)b;
			have_cluster = true;
		} else if (!strcmp(w0, "peer")) {
			if (!have_cluster) {
				fail("%s:%d: `peer` before the `cluster <n> <f>` line", file, ln);
				goto out;
			}
			if (sscanf(line, "%*s %lu %63s %63s %lu %7s", &a, w2, w3, &port, extra) != 4) {
				fail("%s:%d: expected `peer <index> <ipv4> <mac> <port>`", file, ln);
				goto out;
			}
			if (a >= pt->n) {
				fail("%s:%d: peer index %lu out of range 0..%u", file, ln, a, pt->n - 1);
				goto out;
			}
			if (pt->seen[a]) {
				fail("%s:%d: peer %lu listed twice", file, ln, a);
				goto out;
			}
			if (inet_pton(AF_INET, w2, &ip) != 1) {
				fail("%s:%d: '%s' is not an IPv4 address", file, ln, w2);
				goto out;
			}
			if (!parse_mac(w3, pt->p[a].mac)) {
				fail("%s:%d: '%s' is not a MAC address (aa:bb:cc:dd:ee:ff)", file, ln, w3);
				goto out;
			}
			if (port < 1 || port > 65535) {
				fail("%s:%d: port %lu out of range 1..65535", file, ln, port);
				goto out;
			}
			pt->p[a].ip = ip.s_addr;
			pt->p[a].port = htons((__u16)port);
			pt->seen[a] = true;
		} else {
			fail("%s:%d: unknown line starting with '%s' (expected cluster, peer or #comment)", file, ln, w0);
			goto out;
		}
	}
	if (!have_cluster) {
		fail("%s: no `cluster <n> <f>` line; regenerate it with `electrode-lab up`", file);
		goto out;
	}
	for (__u32 i = 0; i < pt->n; i++) {
		if (!pt->seen[i]) {
			fail("%s: no `peer %u ...` line for a cluster of %u", file, i, pt->n);
			goto out;
		}
	}
	err = 0;
out:
	fclose(fp);
	return err;
}
