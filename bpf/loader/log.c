// SPDX-License-Identifier: MIT
/*
 * log.c - libbpf's log, captured and shown only on failure; fail(); what a
 * verifier log means; JSON strings.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

static char logbuf[32768];
static size_t loglen;

/* Appends to logbuf, keeping the tail: that is where the verifier's verdict is. */
static void log_append(const char *s, size_t n)
{
	const size_t cap = sizeof(logbuf) - 1;

	if (n >= cap) {
		s += n - cap;
		n = cap;
		loglen = 0;
	} else if (loglen + n > cap) {
		size_t drop = loglen + n - cap;

		memmove(logbuf, logbuf + drop, loglen - drop);
		loglen -= drop;
	}
	memcpy(logbuf + loglen, s, n);
	loglen += n;
	logbuf[loglen] = 0;
}

void log_reset(void)
{
	loglen = 0;
	logbuf[0] = 0;
}

const char *log_text(void)
{
	return logbuf;
}

/* libbpf hands over the whole verifier log as ONE message: no fixed-size line buffer here. */
int capture(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg;
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	n = vasprintf(&msg, fmt, ap);
	if (n < 0)
		return 0;
	log_append(msg, (size_t)n);
	free(msg);
	return 0;
}

/* The last `lines` lines of the captured log. */
const char *log_tail(int lines)
{
	const char *p = logbuf + loglen;

	while (p > logbuf && lines >= 0) {
		p--;
		if (*p == '\n')
			lines--;
	}
	return p == logbuf ? p : p + 1;
}

static void print_log_tail(void)
{
	if (!loglen)
		return;
	fprintf(stderr, "--- libbpf log (tail) ---\n%s%s", log_tail(25), logbuf[loglen - 1] == '\n' ? "" : "\n");
}

/* The kernel's extack message for the last netlink failure, if libbpf logged one. */
const char *kernel_reason(void)
{
	static char reason[256];
	const char *k = NULL, *p = logbuf;

	while ((p = strstr(p, "Kernel error message: ")) != NULL) {
		k = p + strlen("Kernel error message: ");
		p = k;
	}
	if (!k)
		return NULL;
	snprintf(reason, sizeof(reason), "%.*s", (int)strcspn(k, "\n"), k);
	return reason;
}

int fail(const char *fmt, ...)
{
	va_list ap;

	print_log_tail();
	log_reset();
	fputs("el-loader: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/*
 * What a verifier log means, in words: the known ways our objects were
 * refused on some kernel (each seen for real, see bpf/README.md), else the
 * last line as it is. Never a guess about the kernel version.
 */
const char *explain_verifier(const char *log)
{
	static const struct { const char *pattern, *meaning; } known[] = {
		{ "invalid mem access 'inv'",
		  "a pointer lost its type: this verifier does not keep pointers that were spilled to the stack "
		  "for that kind of memory (on 5.8: the bpf_ringbuf_reserve() result, PTR_TO_MEM); keep such a pointer "
		  "in a register or use a map value" },
		{ "unbounded min value",
		  "pointer arithmetic with a value whose range this verifier lost (on 5.8 and 6.1: the result of a byte "
		  "swap); bound it with an instruction the verifier sees (an asm mask)" },
		{ "unknown func", "the program calls a helper this kernel does not have" },
		{ "invalid func", "the program calls a helper this kernel does not have" },
		{ "BPF program is too large", "the verifier's complexity limit (1M instructions) was reached" },
		{ "back-edge", "a loop this verifier cannot bound (bounded loops need Linux 5.3)" },
		{ "invalid argument", "a map or program type this kernel does not support" },
		{ "R1 type=ctx expected=fp", "a helper got the wrong kind of argument on this kernel" },
		{ "Arg#0 type PTR", "a non-inlined function taking the context: without kernel BTF it must be inlined" },
		{ "combined stack size", "the stack of the program and its tail calls is larger than this kernel allows" },
	};
	static char last[256];
	const char *end, *start;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strstr(log, known[i].pattern))
			return known[i].meaning;
	/* the last non-empty line that is not libbpf's own framing */
	end = log + strlen(log);
	while (end > log) {
		while (end > log && (end[-1] == '\n' || end[-1] == ' '))
			end--;
		start = end;
		while (start > log && start[-1] != '\n')
			start--;
		if (end > start && !strstr(start, "libbpf:") && !strstr(start, "END PROG LOAD LOG") &&
		    !strstr(start, "processed ")) {
			snprintf(last, sizeof(last), "%.*s", (int)(end - start), start);
			return last;
		}
		end = start;
	}
	return "no verifier output";
}

void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", out);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}
