// SPDX-License-Identifier: MIT
/*
 * stats.c - el-loader stats: the per-program counters (el_stats).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"

static const char *const STAT_NAMES[EL_PROG_MAX] = { "dispatch", "broadcast", "quorum", "reply", "egress" };

int read_stats(const char *dir, struct el_stat out[EL_PROG_MAX])
{
	int ncpu = libbpf_num_possible_cpus(), fd, rc = -1;
	struct el_stat *per;

	if (ncpu <= 0)
		return fail("cannot count possible CPUs: %s", strerror(-ncpu));
	if ((fd = open_pinned(dir, EL_STR(EL_MAP_STATS))) < 0)
		return -1;
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per) {
		fail("out of memory");
		goto out;
	}
	memset(out, 0, sizeof(struct el_stat) * EL_PROG_MAX);
	for (__u32 k = 0; k < EL_PROG_MAX; k++) {
		if (bpf_map_lookup_elem(fd, &k, per)) {
			fail("read " EL_STR(EL_MAP_STATS) "[%u]: %s", k, strerror(errno));
			goto out;
		}
		for (int c = 0; c < ncpu; c++) {
			const __u64 *src = (const __u64 *)&per[c];
			__u64 *dst = (__u64 *)&out[k];

			for (size_t w = 0; w < sizeof(struct el_stat) / sizeof(__u64); w++)
				dst[w] += src[w];
		}
	}
	rc = 0;
out:
	free(per);
	close(fd);
	return rc;
}

void print_stats_json(const struct el_stat s[EL_PROG_MAX])
{
	printf("{");
	for (int k = 0; k < EL_PROG_MAX; k++)
		printf("%s\"%s\":{\"seen\":%llu,\"passed\":%llu,\"dropped\":%llu,\"cloned\":%llu,\"replied\":%llu,"
		       "\"fallback\":%llu,\"full\":%llu,\"errors\":%llu}",
		       k ? "," : "", STAT_NAMES[k], (unsigned long long)s[k].seen, (unsigned long long)s[k].passed,
		       (unsigned long long)s[k].dropped, (unsigned long long)s[k].cloned, (unsigned long long)s[k].replied,
		       (unsigned long long)s[k].fallback, (unsigned long long)s[k].full, (unsigned long long)s[k].errors);
	printf("}");
}

static const char STATS_USAGE[] = "el-loader stats --pin-dir DIR [--json]";

static int cmd_stats(int argc, char **argv)
{
	struct common o = { 0 };
	struct el_stat s[EL_PROG_MAX];

	if (parse_cmd(argc, argv, PIN_JSON_OPTIONS, STATS_USAGE, only_common, &o) || need_pin_dir("stats", &o))
		return 2;
	if (root_and_bpffs(o.pin_dir) || read_stats(o.pin_dir, s))
		return 1;
	if (o.json) {
		print_stats_json(s);
		printf("\n");
		return 0;
	}
	printf("%-10s %11s %11s %11s %11s %11s %11s %11s %11s\n", "program", "seen", "passed", "dropped", "cloned",
	       "replied", "fallback", "full", "errors");
	for (int k = 0; k < EL_PROG_MAX; k++)
		printf("%-10s %11llu %11llu %11llu %11llu %11llu %11llu %11llu %11llu\n", STAT_NAMES[k],
		       (unsigned long long)s[k].seen, (unsigned long long)s[k].passed, (unsigned long long)s[k].dropped,
		       (unsigned long long)s[k].cloned, (unsigned long long)s[k].replied, (unsigned long long)s[k].fallback,
		       (unsigned long long)s[k].full, (unsigned long long)s[k].errors);
	return 0;
}

const struct command STATS_CMD = { "stats", cmd_stats, STATS_USAGE };
