/* SPDX-License-Identifier: MIT
 * util.h - logging, clocks and small helpers shared by replica and client. */
#ifndef EL_UTIL_H
#define EL_UTIL_H

#include <stdint.h>
#include <stddef.h>

enum el_log_level { EL_LOG_DEBUG = 0, EL_LOG_INFO = 1, EL_LOG_WARN = 2, EL_LOG_ERROR = 3 };

extern int el_log_threshold;
extern const char *el_log_tag;

void el_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define LOG_DEBUG(...) do { if (el_log_threshold <= EL_LOG_DEBUG) el_log(EL_LOG_DEBUG, __VA_ARGS__); } while (0)
#define LOG_INFO(...)  el_log(EL_LOG_INFO, __VA_ARGS__)
#define LOG_WARN(...)  el_log(EL_LOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) el_log(EL_LOG_ERROR, __VA_ARGS__)

/* Returns -1 for an unknown name. */
int el_log_level_parse(const char *name);

uint64_t el_now_us(void);           /* CLOCK_MONOTONIC */
double el_now_s(void);

/* xorshift64*: tiny, fast, per-owner state. */
uint64_t el_rand(uint64_t *state);
double el_rand_unit(uint64_t *state); /* [0, 1) */
uint64_t el_rand_seed(void);

void *el_xmalloc(size_t n);
void *el_xcalloc(size_t n, size_t m);
void *el_xrealloc(void *p, size_t n);
/* Returns freed heap pages to the system (glibc's malloc_trim; nothing under
 * a sanitizer, whose allocator is not glibc's). */
void el_release_free_memory(void);

/* Strict number parsing: whole string, in range. Return 0 on success. */
/* "a.b.c.d:port" of an IPv4 address and port in network byte order, into buf; returns buf. */
#define EL_ADDR_STRLEN 22
const char *el_addr_str(uint32_t ip, uint16_t port, char *buf, size_t len);

int el_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int el_parse_double(const char *s, double min, double max, double *out);

#endif
