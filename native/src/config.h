/* SPDX-License-Identifier: MIT
 * config.h - the replica config file ("f <f>" then "replica <host>:<port>"
 * per replica, in index order, optionally "mtu <bytes>" of the lab network
 * and "max-clients <n>"), as rendered by src/core/render.ts. Whatever changes a
 * replicated outcome lives here, read alike by every replica, never in a
 * per-replica flag: the client table's size decides which client is
 * forgotten and so which retried request is refused. */
#ifndef EL_CONFIG_H
#define EL_CONFIG_H

#include <netinet/in.h>
#include <stdint.h>
#include <stddef.h>

struct el_cluster {
	uint32_t n, f;
	uint32_t mtu;              /* lab network MTU (default 1500)        */
	uint32_t max_clients;      /* client table size (0 = the default)   */
	struct sockaddr_in *addrs; /* n entries */
};

/* Returns 0, or -1 with a one-line reason in err. */
int el_cluster_load(const char *path, struct el_cluster *c, char *err, size_t errlen);
int el_cluster_parse(const char *text, struct el_cluster *c, char *err, size_t errlen);
void el_cluster_free(struct el_cluster *c);

#endif
