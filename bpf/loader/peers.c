// SPDX-License-Identifier: MIT
/*
 * peers.c - the lab's peers file (files/peers.table): the cluster and every replica's
 * address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "loader.h"

/* `cluster <n> <f>`; at: "FILE:LINE" for the errors. */
static int cluster_line(const char *line, const char *at, struct peers *pt)
{
	unsigned long a, b;
	char extra[8];

	if (sscanf(line, "%*s %lu %lu %7s", &a, &b, extra) != 2)
		return fail("%s: expected `cluster <n> <f>`", at);
	if (a < 1 || a > EL_MAX_REPLICAS)
		return fail("%s: cluster size %lu out of range 1..%d", at, a, EL_MAX_REPLICAS);
	/* quorums of f+1 out of 2f+1 intersect; other sizes do not */
	if (2 * b + 1 != a)
		return fail("%s: f=%lu with %lu replicas: quorums of f+1 intersect only with exactly 2f+1 = %lu replicas", at, b,
			    a, 2 * b + 1);
	pt->n = (__u32)a;
	pt->f = (__u32)b;
	return 0;
}

/* `peer <index> <ipv4> <mac> <port>`, after the cluster line. */
static int peer_line(const char *line, const char *at, struct peers *pt)
{
	char ip_s[64], mac_s[64], extra[8];
	unsigned long a, port;
	struct in_addr ip;

	if (sscanf(line, "%*s %lu %63s %63s %lu %7s", &a, ip_s, mac_s, &port, extra) != 4)
		return fail("%s: expected `peer <index> <ipv4> <mac> <port>`", at);
	if (a >= pt->n)
		return fail("%s: peer index %lu out of range 0..%u", at, a, pt->n - 1);
	if (pt->seen[a])
		return fail("%s: peer %lu listed twice", at, a);
	if (inet_pton(AF_INET, ip_s, &ip) != 1)
		return fail("%s: '%s' is not an IPv4 address", at, ip_s);
	if (!parse_mac(mac_s, pt->p[a].mac))
		return fail("%s: '%s' is not a MAC address (aa:bb:cc:dd:ee:ff)", at, mac_s);
	if (port < 1 || port > 65535)
		return fail("%s: port %lu out of range 1..65535", at, port);
	pt->p[a].ip = ip.s_addr;
	pt->p[a].port = htons((__u16)port);
	pt->seen[a] = true;
	return 0;
}

static int one_line(const char *line, const char *at, bool *have_cluster, struct peers *pt)
{
	char w0[32];

	if (sscanf(line, "%31s", w0) != 1 || w0[0] == '#')
		return 0;
	if (!strcmp(w0, "cluster")) {
		if (cluster_line(line, at, pt))
			return -1;
		*have_cluster = true;
		return 0;
	}
	if (!strcmp(w0, "peer")) {
		if (!*have_cluster)
			return fail("%s: `peer` before the `cluster <n> <f>` line", at);
		return peer_line(line, at, pt);
	}
	return fail("%s: unknown line starting with '%s' (expected cluster, peer or #comment)", at, w0);
}

int read_peers(const char *file, struct peers *pt)
{
	char line[512], at[PATH_MAX + 16];
	FILE *fp = fopen(file, "r");
	int ln = 0, err = -1;
	bool have_cluster = false;

	if (!fp)
		return fail("peers file %s: %s; it is the lab's files/peers.table (run `electrode-lab up` first)", file,
			    strerror(errno));
	memset(pt, 0, sizeof(*pt));
	while (fgets(line, sizeof(line), fp)) {
		snprintf(at, sizeof(at), "%s:%d", file, ++ln);
		if (one_line(line, at, &have_cluster, pt))
			goto out;
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
