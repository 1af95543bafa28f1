// SPDX-License-Identifier: MIT
/*
 * opts.c - the option parsing every command shares.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

int parse_u64(const char *flag, const char *v, __u64 *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || !*v || v[0] == '-')
		return fail("%s %s: not a whole number >= 0", flag, v);
	*out = x;
	return 0;
}

bool parse_mac(const char *s, __u8 mac[6])
{
	unsigned int b[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		mac[i] = (__u8)b[i];
	return true;
}

/* Handles the options common to several commands; 1 = not one of them. */
int common_opt(int c, struct common *o)
{
	switch (c) {
	case O_PIN: o->pin_dir = optarg; return 0;
	case O_IFNAME: o->ifname = optarg; return 0;
	case O_IFMAC: o->ifmac = optarg; return 0;
	case O_JSON: o->json = true; return 0;
	default: return 1;
	}
}

int parse_cmd(int argc, char **argv, const struct option *table, const char *usage,
		     int (*each)(int c, void *ctx), void *ctx)
{
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", table, NULL)) != -1) {
		if (c == '?' || each(c, ctx))
			return fail("usage: %s", usage);
	}
	if (optind < argc)
		return fail("unexpected argument '%s'; usage: %s", argv[optind], usage);
	return 0;
}

int need_pin_dir(const char *cmd, const struct common *o)
{
	if (!o->pin_dir)
		return fail("%s: --pin-dir DIR is required (the node's pinDir from the lab plan)", cmd);
	return 0;
}

int only_common(int c, void *ctx)
{
	return common_opt(c, ctx);
}

const struct option PIN_JSON_OPTIONS[] = {
	{ "pin-dir", required_argument, 0, O_PIN }, { "json", no_argument, 0, O_JSON }, { 0, 0, 0, 0 },
};
