/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include "util.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int el_log_threshold = EL_LOG_INFO;
const char *el_log_tag = "el";

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void el_log(int level, const char *fmt, ...)
{
	if (level < el_log_threshold)
		return;
	char line[1024];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/*
	 * The epoch stays first (tools compute intervals from it); the UTC wall
	 * clock after it lines up with tcpdump, which prints the time of day.
	 */
	struct tm tm;
	char utc[32] = "?";
	if (gmtime_r(&ts.tv_sec, &tm))
		strftime(utc, sizeof(utc), "%Y-%m-%dT%H:%M:%S", &tm);
	long us = ts.tv_nsec / 1000;
	int n = snprintf(line, sizeof(line), "%ld.%06ld %s.%06ldZ %s %s: ", (long)ts.tv_sec, us,
			 utc, us, el_log_tag, level_names[level]);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* one write() per line so lines from several processes never interleave */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

int el_log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

uint64_t el_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

double el_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t el_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

double el_rand_unit(uint64_t *s)
{
	return (double)(el_rand(s) >> 11) / 9007199254740992.0;
}

uint64_t el_rand_seed(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = el_now_us() ^ ((uint64_t)getpid() << 32);
	return v ? v : 1;
}

void *el_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		LOG_ERROR("out of memory (%zu bytes)", n);
		abort();
	}
	return p;
}

void *el_xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p) {
		LOG_ERROR("out of memory (%zu x %zu bytes)", n, m);
		abort();
	}
	return p;
}

void *el_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		LOG_ERROR("out of memory (%zu bytes)", n);
		abort();
	}
	return q;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define EL_SANITIZED 1
#endif

void el_release_free_memory(void)
{
#if defined(__GLIBC__) && !defined(EL_SANITIZED)
	malloc_trim(0);
#endif
}

int el_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int el_parse_double(const char *s, double min, double max, double *out)
{
	if (!s || !*s)
		return -1;
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

const char *el_addr_str(uint32_t ip, uint16_t port, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = ip };
	char ipbuf[INET_ADDRSTRLEN];

	snprintf(buf, len, "%s:%u", inet_ntop(AF_INET, &a, ipbuf, sizeof(ipbuf)) ? ipbuf : "?", ntohs(port));
	return buf;
}
