/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "config.h"
#include "util.h"
#include "../include/el_proto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void el_cluster_free(struct el_cluster *c)
{
	free(c->addrs);
	c->addrs = NULL;
	c->n = 0;
}

static int resolve(const char *host, uint16_t port, struct sockaddr_in *out)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM }, *res = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return -1;
	memcpy(out, res->ai_addr, sizeof(*out));
	out->sin_port = htons(port);
	freeaddrinfo(res);
	return 0;
}

/* What the lines so far said that is not yet in the cluster. */
struct parse_state {
	size_t cap; /* of c->addrs */
	int have_f;
	uint64_t f;
};

static int parse_replica(char *arg, int lineno, struct el_cluster *c, struct parse_state *st, char *err, size_t errlen)
{
	char *colon = strrchr(arg, ':');
	uint64_t port;
	if (!colon || colon == arg || el_parse_u64(colon + 1, 1, 65535, &port)) {
		snprintf(err, errlen, "line %d: replica must be <ip>:<port>, got '%s'", lineno, arg);
		return -1;
	}
	*colon = 0;
	if (c->n == st->cap) {
		st->cap *= 2;
		c->addrs = el_xrealloc(c->addrs, st->cap * sizeof(*c->addrs));
	}
	if (resolve(arg, (uint16_t)port, &c->addrs[c->n])) {
		snprintf(err, errlen, "line %d: cannot resolve '%s' to an IPv4 address", lineno, arg);
		return -1;
	}
	c->n++;
	return 0;
}

/* One line of the config (comments already cut off); 0, or -1 with err set. */
static int parse_line(char *line, int lineno, struct el_cluster *c, struct parse_state *st, char *err, size_t errlen)
{
	char kw[32], arg[300], extra[2];
	int k = sscanf(line, "%31s %299s %1s", kw, arg, extra);
	if (k <= 0)
		return 0;
	if (k != 2) {
		snprintf(err, errlen,
			 "line %d: expected `f <n>`, `replica <ip>:<port>`, `mtu <bytes>` or `max-clients <n>`",
			 lineno);
		return -1;
	}
	if (strcmp(kw, "f") == 0) {
		if (el_parse_u64(arg, 0, 7, &st->f)) {
			snprintf(err, errlen, "line %d: f must be 0..7, got '%s'", lineno, arg);
			return -1;
		}
		st->have_f = 1;
	} else if (strcmp(kw, "mtu") == 0) {
		uint64_t mtu;
		if (el_parse_u64(arg, 576, 9000, &mtu)) {
			snprintf(err, errlen, "line %d: mtu must be 576..9000, got '%s'", lineno, arg);
			return -1;
		}
		c->mtu = (uint32_t)mtu;
	} else if (strcmp(kw, "max-clients") == 0) {
		uint64_t mc;
		if (el_parse_u64(arg, 16, 1u << 24, &mc)) {
			snprintf(err, errlen, "line %d: max-clients must be 16..16777216, got '%s'", lineno, arg);
			return -1;
		}
		c->max_clients = (uint32_t)mc;
	} else if (strcmp(kw, "replica") == 0) {
		return parse_replica(arg, lineno, c, st, err, errlen);
	} else {
		snprintf(err, errlen, "line %d: unknown keyword '%s' (expected f, replica, mtu or max-clients)", lineno, kw);
		return -1;
	}
	return 0;
}

/* The whole config's rules, once every line is read. */
static int check_cluster(struct el_cluster *c, const struct parse_state *st, char *err, size_t errlen)
{
	if (!st->have_f) {
		snprintf(err, errlen, "missing `f <n>` line");
		return -1;
	}
	c->f = (uint32_t)st->f;
	if (!c->mtu)
		c->mtu = 1500;
	/* quorums of f+1 intersect only when there are exactly 2f+1 replicas:
	 * with more (n=4, f=1) two quorums can miss each other, with f=0 and
	 * n>1 a replica commits alone */
	if (c->n != 2 * c->f + 1) {
		snprintf(err, errlen, "f=%u needs exactly 2f+1 = %u replicas for quorums to intersect, the config lists %u",
			 c->f, 2 * c->f + 1, c->n);
		return -1;
	}
	if (c->n > EL_MAX_REPLICAS) {
		snprintf(err, errlen, "%u replicas listed; at most %d are supported", c->n, EL_MAX_REPLICAS);
		return -1;
	}
	return 0;
}

int el_cluster_parse(const char *text, struct el_cluster *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	struct parse_state st = { .cap = 4 };
	c->addrs = el_xcalloc(st.cap, sizeof(*c->addrs));
	char *copy = strdup(text), *save = NULL;
	if (!copy)
		abort();
	int lineno = 0;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		if (parse_line(line, lineno, c, &st, err, errlen))
			goto fail;
	}
	free(copy);
	copy = NULL;
	if (check_cluster(c, &st, err, errlen))
		goto fail;
	return 0;
fail:
	free(copy);
	el_cluster_free(c);
	return -1;
}

int el_cluster_load(const char *path, struct el_cluster *c, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		snprintf(err, errlen, "cannot open config %s: %s", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, len = 0;
	char *buf = el_xmalloc(cap);
	size_t r;
	while ((r = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
		len += r;
		if (len + 1 == cap) {
			cap *= 2;
			buf = el_xrealloc(buf, cap);
		}
	}
	fclose(fp);
	buf[len] = 0;
	char inner[256];
	int rc = el_cluster_parse(buf, c, inner, sizeof(inner));
	if (rc)
		snprintf(err, errlen, "config %s: %s", path, inner);
	free(buf);
	return rc;
}
