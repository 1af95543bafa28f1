// SPDX-License-Identifier: MIT
/*
 * drain.c - el-loader drain: consumes el_fr_ring, one JSON line per record (tests,
 * debugging).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"

static int on_record(void *ctx, void *data, size_t size)
{
	const struct el_fr_record *rec = data;
	const struct el_hdr *h = (const void *)(rec + 1);

	(void)ctx;
	if (size < sizeof(*rec) + sizeof(*h) || rec->len < sizeof(*h) || rec->len > size - sizeof(*rec)) {
		printf("{\"bad_record\":true,\"size\":%zu}\n", size);
		return 0;
	}
	printf("{\"len\":%u,\"magic_ok\":%s,\"type\":%u,\"replica\":%u,\"view\":%llu,\"opnum\":%llu,\"aux\":%u,"
	       "\"payload_len\":%u}\n",
	       rec->len, h->magic == EL_MAGIC ? "true" : "false", h->type, h->replica, (unsigned long long)h->view,
	       (unsigned long long)h->opnum, h->aux, h->payload_len);
	return 0;
}

static const char DRAIN_USAGE[] = "el-loader drain --pin-dir DIR";
static const struct option PIN_OPTIONS[] = { { "pin-dir", required_argument, 0, O_PIN }, { 0, 0, 0, 0 } };

static int cmd_drain(int argc, char **argv)
{
	struct common o = { 0 };
	struct ring_buffer *rb = NULL;
	int fd, n, rc = 1;

	if (parse_cmd(argc, argv, PIN_OPTIONS, DRAIN_USAGE, only_common, &o) || need_pin_dir("drain", &o))
		return 2;
	if (root_and_bpffs(o.pin_dir) || (fd = open_pinned(o.pin_dir, EL_STR(EL_MAP_FR_RING))) < 0)
		return 1;
	rb = ring_buffer__new(fd, on_record, NULL, NULL);
	if (!rb) {
		fail("open ring buffer " EL_STR(EL_MAP_FR_RING) ": %s", strerror(errno));
		goto out;
	}
	n = ring_buffer__consume(rb);
	if (n < 0) {
		fail("consume " EL_STR(EL_MAP_FR_RING) ": %s", strerror(-n));
		goto out;
	}
	rc = 0;
out:
	ring_buffer__free(rb);
	close(fd);
	return rc;
}

const struct command DRAIN_CMD = { "drain", cmd_drain, DRAIN_USAGE };
