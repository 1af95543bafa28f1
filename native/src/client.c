/* SPDX-License-Identifier: MIT
 *
 * client.c - closed-loop benchmark client: each thread keeps exactly one
 * request outstanding, sends it to the replica it believes leads, and on a
 * timeout resends it to every replica. Prints a specpaxos-style summary and
 * then ONE JSON line (the last line of stdout) for the bench harness.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <endian.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "util.h"
#include "wire.h"

struct copts {
	const char *config;
	uint64_t requests;      /* -n */
	double duration;        /* -d */
	double warmup;          /* -w */
	uint32_t threads;
	uint64_t id_base;
	int id_base_set;
	uint64_t timeout_ms;
	uint64_t keys;
	uint64_t max_retries;
	const char *ack_log;
	const char *history;
	const char *key_prefix;
	int echo;               /* --echo: the floor, against `echo` on replica 0's address */
};

struct thread_state {
	pthread_t tid;
	uint32_t idx;
	uint64_t client_id;
	uint64_t rng;
	uint32_t *lat;          /* measured latencies, us */
	size_t nlat, cap_lat;
	uint64_t *acked;        /* request ids acknowledged, in order */
	size_t nacked, cap_acked;
	uint64_t *acked_op;     /* the op number each reply named (--ack-log's third column) */
	size_t nacked_op, cap_acked_op;
	uint64_t reply_op;      /* of the request just acknowledged */
	uint32_t *tl;           /* measured completions per TL_BUCKET_MS since the warm-up ended */
	size_t ntl, cap_tl;
	uint64_t completed, errors, timeouts, issued, warmup_done;
	char err[256];
	/* --history: this thread's lines, written out in whole lines */
	char *hbuf;
	size_t hlen, hcap;
};

/* The completion timeline's step: the bench finds the window every client
 * node of a trial measured in (src/bench/clients.ts) from these. */
#define TL_BUCKET_MS 100

static struct copts O;
static struct el_cluster CL;
static double T0, T_MEASURE, T_END;
static atomic_uint_fast64_t tickets;
static FILE *HIST;
static pthread_mutex_t hist_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- --history: one JSON line per operation, for the linearizability
 * checker (src/check/history.ts): client, key, op, value, invoke and
 * complete (microseconds, CLOCK_MONOTONIC, one clock for all threads),
 * status ok|timeout, result (put/append: the new length; get: the value). */

static void hist_put(struct thread_state *t, const char *s, size_t n)
{
	if (t->hlen + n > t->hcap) {
		t->hcap = (t->hlen + n) * 2 + 4096;
		t->hbuf = el_xrealloc(t->hbuf, t->hcap);
	}
	memcpy(t->hbuf + t->hlen, s, n);
	t->hlen += n;
}

static void hist_str(struct thread_state *t, const uint8_t *p, size_t n)
{
	char esc[8];
	hist_put(t, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			hist_put(t, esc, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			int k = snprintf(esc, sizeof(esc), "\\u%04x", c);
			hist_put(t, esc, (size_t)k);
		} else {
			hist_put(t, (const char *)&c, 1);
		}
	}
	hist_put(t, "\"", 1);
}

static void hist_flush(struct thread_state *t, int force)
{
	if (!HIST || !t->hlen || (!force && t->hlen < 65536))
		return;
	pthread_mutex_lock(&hist_lock);
	fwrite(t->hbuf, 1, t->hlen, HIST);
	pthread_mutex_unlock(&hist_lock);
	t->hlen = 0;
}

static void hist_op(struct thread_state *t, const struct el_op *op, uint64_t invoke, uint64_t complete, int ok,
		    const uint8_t *result, size_t rlen)
{
	char num[160];
	static const char *const names[] = { "?", "put", "get", "append" };
	int k = snprintf(num, sizeof(num), "{\"client\":%" PRIu64 ",\"key\":", t->client_id);
	hist_put(t, num, (size_t)k);
	hist_str(t, op->key, op->key_len);
	k = snprintf(num, sizeof(num), ",\"op\":\"%s\"", names[op->op <= 3 ? op->op : 0]);
	hist_put(t, num, (size_t)k);
	if (op->op != EL_OP_GET) {
		hist_put(t, ",\"value\":", 9);
		hist_str(t, op->val, op->val_len);
	}
	if (ok) {
		k = snprintf(num, sizeof(num), ",\"invoke\":%" PRIu64 ",\"complete\":%" PRIu64 ",\"status\":\"ok\",\"result\":",
			     invoke, complete);
		hist_put(t, num, (size_t)k);
		if (op->op == EL_OP_GET) {
			hist_str(t, result, rlen);
		} else {
			uint32_t len = 0;
			if (rlen == 4)
				memcpy(&len, result, 4);
			k = snprintf(num, sizeof(num), "%u", le32toh(len));
			hist_put(t, num, (size_t)k);
		}
	} else {
		k = snprintf(num, sizeof(num), ",\"invoke\":%" PRIu64 ",\"status\":\"timeout\"", invoke);
		hist_put(t, num, (size_t)k);
	}
	hist_put(t, "}\n", 2);
	hist_flush(t, 0);
}

static void push_u32(uint32_t **a, size_t *n, size_t *cap, uint32_t v)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 4096;
		*a = el_xrealloc(*a, *cap * sizeof(**a));
	}
	(*a)[(*n)++] = v;
}

static void push_u64(uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 4096;
		*a = el_xrealloc(*a, *cap * sizeof(**a));
	}
	(*a)[(*n)++] = v;
}

/* -n: requests started after the warm-up take a ticket, -n of them are
 * measured (as specpaxos clients count); -d: run until the deadline.
 * *measured says whether this request counts. */
static int more_work(int *measured)
{
	if (el_now_s() < T_MEASURE) {
		*measured = 0;
		return 1;
	}
	*measured = 1;
	if (O.requests) {
		uint64_t t = atomic_fetch_add(&tickets, 1);
		return t < O.requests;
	}
	return el_now_s() < T_END;
}

static size_t make_request(struct thread_state *t, uint64_t rid, uint8_t *buf, size_t cap)
{
	uint8_t op[EL_MAX_OP_LEN];
	char key[EL_MAX_KEY + 1], val[32];
	uint64_t x = el_rand(&t->rng);
	int kl = snprintf(key, sizeof(key), "%s%" PRIu64, O.key_prefix, (x >> 8) % O.keys);
	int vl = snprintf(val, sizeof(val), "%" PRIx64 ".%" PRIu64 ";", t->client_id, rid);
	uint32_t kind = (uint32_t)(x & 3);
	uint8_t code = kind < 2 ? EL_OP_PUT : kind == 2 ? EL_OP_APPEND : EL_OP_GET;
	size_t n = el_op_encode(op, sizeof(op), code, key, (size_t)kl, val,
				code == EL_OP_GET ? 0 : (size_t)vl);
	struct el_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = EL_MSG_REQUEST;
	h.replica = EL_NO_REPLICA;
	h.client_id = t->client_id;
	h.request_id = rid;
	struct el_builder b;
	el_build_start(&b, buf, cap, &h);
	if (el_build_bytes(&b, op, n))
		abort();
	return el_build_finish(&b);
}

/* Waits for the reply to request rid until the deadline; 1 when it came
 * (the leader it names is remembered, the history gets the operation). */
static int await_reply(struct thread_state *t, int s, uint64_t rid, double deadline, uint32_t *leader,
		       const struct el_op *op, uint64_t invoke_us)
{
	static _Thread_local uint8_t rbuf[65536];
	for (;;) {
		double left = deadline - el_now_s();
		if (left <= 0)
			return 0;
		struct pollfd pfd = { .fd = s, .events = POLLIN };
		int pr = poll(&pfd, 1, (int)(left * 1000.0) + 1);
		if (pr <= 0)
			continue;
		ssize_t got = recv(s, rbuf, sizeof(rbuf), MSG_DONTWAIT);
		if (got <= 0)
			continue;
		struct el_msg m;
		if (el_msg_decode(rbuf, (size_t)got, CL.n, &m) != EL_OK ||
		    m.h.type != (O.echo ? EL_MSG_REQUEST : EL_MSG_REPLY) || m.h.client_id != t->client_id ||
		    m.h.request_id != rid)
			continue; /* stale or foreign (--echo: our own request, back) */
		*leader = (uint32_t)(m.h.view % CL.n);
		t->reply_op = m.h.opnum;
		if (HIST)
			hist_op(t, op, invoke_us, el_now_us(), 1, m.payload, m.payload_len);
		return 1;
	}
}

/* Sends request rid until a reply comes or --max-retries runs out; 1 = replied. */
static int call(struct thread_state *t, int s, const uint8_t *req, size_t len, uint64_t rid, uint32_t *leader,
		const struct el_op *op, uint64_t invoke_us)
{
	for (uint64_t tries = 0;;) {
		if (tries == 0 || O.echo) {
			sendto(s, req, len, 0, (struct sockaddr *)&CL.addrs[O.echo ? 0 : *leader], sizeof(CL.addrs[0]));
		} else {
			/* we may be talking to a dead or deposed leader: ask everyone */
			for (uint32_t i = 0; i < CL.n; i++)
				sendto(s, req, len, 0, (struct sockaddr *)&CL.addrs[i], sizeof(CL.addrs[0]));
		}
		double deadline = el_now_s() + (double)O.timeout_ms / 1000.0;
		if (await_reply(t, s, rid, deadline, leader, op, invoke_us))
			return 1;
		t->timeouts++;
		if (++tries > O.max_retries) {
			t->errors++;
			snprintf(t->err, sizeof(t->err),
				 "request %" PRIu64 " got no reply after %" PRIu64 " tries", rid, tries);
			return 0;
		}
	}
}

static void timeline_add(struct thread_state *t, double end)
{
	double since = end - T_MEASURE;
	size_t b = since > 0 ? (size_t)(since * 1000.0 / TL_BUCKET_MS) : 0;
	if (b >= t->cap_tl) {
		size_t cap = t->cap_tl ? t->cap_tl : 64;
		while (cap <= b)
			cap *= 2;
		t->tl = el_xrealloc(t->tl, cap * sizeof(*t->tl));
		memset(t->tl + t->cap_tl, 0, (cap - t->cap_tl) * sizeof(*t->tl));
		t->cap_tl = cap;
	}
	t->tl[b]++;
	if (b + 1 > t->ntl)
		t->ntl = b + 1;
}

static void record_ack(struct thread_state *t, uint64_t rid, double start, int measured)
{
	double end = el_now_s();
	push_u64(&t->acked, &t->nacked, &t->cap_acked, rid);
	push_u64(&t->acked_op, &t->nacked_op, &t->cap_acked_op, t->reply_op);
	if (!measured)
		t->warmup_done++;
	if (measured) {
		double us = (end - start) * 1e6;
		push_u32(&t->lat, &t->nlat, &t->cap_lat, us > 4e9 ? UINT32_MAX : (uint32_t)us);
		t->completed++;
		timeline_add(t, end);
	}
}

static void *run_thread(void *arg)
{
	struct thread_state *t = arg;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		snprintf(t->err, sizeof(t->err), "socket: %s", strerror(errno));
		t->errors++;
		return NULL;
	}
	uint8_t req[EL_HDR_LEN + EL_MAX_OP_LEN];
	uint32_t leader = 0;
	uint64_t rid = 0;
	int measured;
	while (more_work(&measured)) {
		rid++;
		t->issued++;
		size_t len = make_request(t, rid, req, sizeof(req));
		struct el_op op;
		el_op_decode(req + EL_HDR_LEN, len - EL_HDR_LEN, &op);
		uint64_t invoke_us = el_now_us();
		double start = el_now_s();
		if (!call(t, s, req, len, rid, &leader, &op, invoke_us)) {
			/* indeterminate: it may still take effect later */
			if (HIST)
				hist_op(t, &op, invoke_us, 0, 0, NULL, 0);
			if (!O.requests)
				continue;
			break; /* a count run cannot finish honestly any more */
		}
		record_ack(t, rid, start, measured);
	}
	close(s);
	hist_flush(t, 1);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: client -c <config> [-n <requests> | -d <seconds>] [-w <warmup s>] [-t <threads>]\n"
		"              [--id-base N] [--timeout-ms MS] [--keys K] [--max-retries R]\n"
		"              [--ack-log FILE] [--history FILE] [--key-prefix P]\n"
		"  -n N             measure N requests after the warm-up (-w), then stop\n"
		"  --ack-log FILE   write '<client_id> <request_id> <opnum>' for every acknowledged request\n"
		"  --history FILE   one JSON line per operation (invoke/complete times, result, or\n"
		"                   timeout), for the linearizability checker\n"
		"  --key-prefix P   keys are P0..P<keys-1> (default k): clients that must not\n"
		"                   touch each other's keys use different prefixes\n"
		"  --echo           the floor: send the same requests to replica 0's address,\n"
		"                   where `echo` sends them back (no replica runs)\n"
		"The JSON line also carries cpu_us and ctx_switches: this process's CPU time\n"
		"(user + system) and context switches over the whole run, warm-up included.\n");
}

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "client: %s, got '%s'\n", what, arg);
	usage(stderr);
	return 2;
}

enum { OPT_IDBASE = 256, OPT_TIMEOUT, OPT_KEYS, OPT_ACK, OPT_RETRIES, OPT_HIST, OPT_PREFIX, OPT_ECHO };

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "requests", required_argument, NULL, 'n' },
	{ "duration", required_argument, NULL, 'd' },
	{ "warmup", required_argument, NULL, 'w' },
	{ "threads", required_argument, NULL, 't' },
	{ "id-base", required_argument, NULL, OPT_IDBASE },
	{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
	{ "keys", required_argument, NULL, OPT_KEYS },
	{ "ack-log", required_argument, NULL, OPT_ACK },
	{ "max-retries", required_argument, NULL, OPT_RETRIES },
	{ "history", required_argument, NULL, OPT_HIST },
	{ "key-prefix", required_argument, NULL, OPT_PREFIX },
	{ "echo", no_argument, NULL, OPT_ECHO },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* One option getopt_long returned; 0, or the exit status of a refusal. */
static int apply_opt(int c)
{
	uint64_t v;
	switch (c) {
	case 'c': O.config = optarg; break;
	case 'n':
		if (el_parse_u64(optarg, 1, UINT64_MAX / 2, &O.requests))
			return bad("-n must be a positive request count", optarg);
		break;
	case 'd':
		if (el_parse_double(optarg, 0.001, 86400, &O.duration))
			return bad("-d must be seconds > 0", optarg);
		break;
	case 'w':
		if (el_parse_double(optarg, 0, 3600, &O.warmup))
			return bad("-w must be seconds >= 0", optarg);
		break;
	case 't':
		if (el_parse_u64(optarg, 1, 1024, &v))
			return bad("-t must be 1..1024 threads", optarg);
		O.threads = (uint32_t)v;
		break;
	case OPT_IDBASE:
		if (el_parse_u64(optarg, 0, UINT64_MAX - 2048, &O.id_base))
			return bad("--id-base must be a number", optarg);
		O.id_base_set = 1;
		break;
	case OPT_TIMEOUT:
		if (el_parse_u64(optarg, 1, 600000, &O.timeout_ms))
			return bad("--timeout-ms must be 1..600000", optarg);
		break;
	case OPT_KEYS:
		if (el_parse_u64(optarg, 1, 1000000000, &O.keys))
			return bad("--keys must be >= 1", optarg);
		break;
	case OPT_RETRIES:
		if (el_parse_u64(optarg, 1, 1000000, &O.max_retries))
			return bad("--max-retries must be >= 1", optarg);
		break;
	case OPT_ACK: O.ack_log = optarg; break;
	case OPT_HIST: O.history = optarg; break;
	case OPT_PREFIX:
		if (!*optarg || strlen(optarg) > 40)
			return bad("--key-prefix must be 1..40 characters", optarg);
		O.key_prefix = optarg;
		break;
	case OPT_ECHO: O.echo = 1; break;
	case 'h': usage(stdout); exit(0);
	default: usage(stderr); return 2;
	}
	return 0;
}

static int parse(int argc, char **argv)
{
	O.threads = 1;
	O.key_prefix = "k";
	O.timeout_ms = 100;
	O.keys = 1000;
	O.max_retries = 300;
	int c, rc;
	while ((c = getopt_long(argc, argv, "c:n:d:w:t:h", long_opts, NULL)) != -1)
		if ((rc = apply_opt(c)))
			return rc;
	if (optind < argc)
		return bad("unexpected argument", argv[optind]);
	if (!O.config) {
		fprintf(stderr, "client: missing -c <config>\n");
		usage(stderr);
		return 2;
	}
	if (O.echo && (O.history || O.ack_log)) {
		fprintf(stderr, "client: --echo measures the network only; it has no history or acks to record\n");
		usage(stderr);
		return 2;
	}
	if (!!O.requests == (O.duration > 0)) {
		fprintf(stderr, "client: give exactly one of -n <requests> or -d <seconds>\n");
		usage(stderr);
		return 2;
	}
	return 0;
}

/* What every thread did, added up, and their latencies, sorted. */
struct totals {
	uint64_t completed, errors, timeouts, issued, warmup_done;
	uint32_t *lat; /* sorted */
	size_t nlat;
	uint64_t *tl;  /* the threads' timelines added up */
	size_t ntl;
	double sum_us;
};

static struct totals add_up(const struct thread_state *ts)
{
	struct totals tot = { 0 };
	for (uint32_t i = 0; i < O.threads; i++) {
		tot.completed += ts[i].completed;
		tot.errors += ts[i].errors;
		tot.timeouts += ts[i].timeouts;
		tot.issued += ts[i].issued;
		tot.nlat += ts[i].nlat;
		tot.warmup_done += ts[i].warmup_done;
		if (ts[i].ntl > tot.ntl)
			tot.ntl = ts[i].ntl;
		if (ts[i].err[0])
			fprintf(stderr, "client: thread %u: %s\n", i, ts[i].err);
	}
	tot.lat = el_xcalloc(tot.nlat ? tot.nlat : 1, sizeof(*tot.lat));
	size_t k = 0;
	for (uint32_t i = 0; i < O.threads; i++)
		for (size_t j = 0; j < ts[i].nlat; j++) {
			tot.lat[k++] = ts[i].lat[j];
			tot.sum_us += ts[i].lat[j];
		}
	qsort(tot.lat, tot.nlat, sizeof(*tot.lat), cmp_u32);
	tot.tl = el_xcalloc(tot.ntl ? tot.ntl : 1, sizeof(*tot.tl));
	for (uint32_t i = 0; i < O.threads; i++)
		for (size_t j = 0; j < ts[i].ntl; j++)
			tot.tl[j] += ts[i].tl[j];
	return tot;
}

/* --ack-log and --history; 0, or how many of them could not be written. */
static uint64_t write_logs(const struct thread_state *ts)
{
	uint64_t errors = 0;
	if (O.ack_log) {
		FILE *fp = fopen(O.ack_log, "w");
		if (!fp) {
			fprintf(stderr, "client: cannot write --ack-log %s: %s\n", O.ack_log, strerror(errno));
			errors++;
		} else {
			for (uint32_t i = 0; i < O.threads; i++)
				for (size_t j = 0; j < ts[i].nacked; j++)
					fprintf(fp, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", ts[i].client_id, ts[i].acked[j],
						ts[i].acked_op[j]);
			if (fclose(fp)) {
				fprintf(stderr, "client: cannot write --ack-log %s\n", O.ack_log);
				errors++;
			}
		}
	}
	if (HIST && fclose(HIST)) {
		fprintf(stderr, "client: cannot write --history %s\n", O.history);
		errors++;
	}
	return errors;
}

/* The specpaxos-style lines, then the one JSON line the bench reads. */
/* Where the measured window lies on this node's clocks (the monotonic one
 * is shared by every process of one kernel: netns labs), and the timeline
 * of completions in it, for the bench's common window over client nodes. */
static void print_window(const struct totals *tot, double measured)
{
	struct timespec real;
	clock_gettime(CLOCK_REALTIME, &real);
	double real_now = (double)real.tv_sec + (double)real.tv_nsec / 1e9;
	double mono_now = el_now_s();
	printf(",\"window\":{\"mono_start_s\":%.6f,\"mono_end_s\":%.6f,\"real_start_s\":%.6f}", T_MEASURE,
	       T_MEASURE + measured, real_now - (mono_now - T_MEASURE));
	printf(",\"timeline\":{\"bucket_ms\":%d,\"completed\":[", TL_BUCKET_MS);
	for (size_t i = 0; i < tot->ntl; i++)
		printf("%s%" PRIu64, i ? "," : "", tot->tl[i]);
	printf("]}");
}

/* A latency's histogram bucket: exact below 1024 us, then 64 buckets per
 * power of two (under 1.6 % wide), so histograms of several clients add up
 * bucket by bucket. src/bench/clients.ts reads the same rule. */
static uint32_t hist_bucket(uint32_t us)
{
	if (us < 1024)
		return us;
	int top = 31 - __builtin_clz(us);
	int shift = top - 6;
	return (us >> shift) << shift;
}

/* The measured latencies as [bucket, count] pairs, ascending. */
static void print_histogram(const struct totals *tot)
{
	printf(",\"hist\":[");
	size_t i = 0;
	int first = 1;
	while (i < tot->nlat) {
		uint32_t b = hist_bucket(tot->lat[i]);
		size_t j = i;
		while (j < tot->nlat && hist_bucket(tot->lat[j]) == b)
			j++;
		printf("%s[%u,%zu]", first ? "" : ",", b, j - i);
		first = 0;
		i = j;
	}
	printf("]");
}

static void print_results(const struct totals *tot, double measured)
{
	const uint32_t *all = tot->lat;
	size_t nlat = tot->nlat;
	double p50 = pct(all, nlat, 0.50), p90 = pct(all, nlat, 0.90), p95 = pct(all, nlat, 0.95),
	       p99 = pct(all, nlat, 0.99), p999 = pct(all, nlat, 0.999);
	double max = nlat ? all[nlat - 1] : 0, mean = nlat ? tot->sum_us / (double)nlat : 0;
	double tput = measured > 0 ? (double)tot->completed / measured : 0;
	printf("Completed %" PRIu64 " requests in %.3f seconds\n", tot->completed, measured);
	printf("Median latency is %.0f us\n", p50);
	printf("90th percentile latency is %.0f us\n", p90);
	printf("95th percentile latency is %.0f us\n", p95);
	printf("99th percentile latency is %.0f us\n", p99);
	uint64_t requests = O.requests ? O.requests : tot->issued;
	/* every thread has been joined: RUSAGE_SELF covers them all */
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	uint64_t cpu_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
			  (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
	uint64_t csw = (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
	printf("{\"kind\":\"electrode-client-result\",\"version\":1,\"requests\":%" PRIu64
	       ",\"completed\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"timeouts\":%" PRIu64
	       ",\"warmup_completed\":%" PRIu64 ",\"threads\":%u,\"warmup_s\":%g,\"duration_s\":%.6f,\"throughput_ops\":%.1f,"
	       "\"latency_us\":{\"p50\":%.0f,\"p90\":%.0f,\"p95\":%.0f,\"p99\":%.0f,\"p999\":%.0f,"
	       "\"max\":%.0f,\"mean\":%.1f},\"cpu_us\":%" PRIu64 ",\"ctx_switches\":%" PRIu64 ",\"echo\":%s",
	       requests, tot->completed, tot->errors, tot->timeouts, tot->warmup_done, O.threads, O.warmup, measured, tput, p50, p90,
	       p95, p99, p999, max, mean, cpu_us, csw, O.echo ? "true" : "false");
	print_window(tot, measured);
	print_histogram(tot);
	printf("}\n");
	fflush(stdout);
}

/* The cluster, the client ids, the history file: 0, or the exit status. */
static int start(void)
{
	char err[512];
	if (el_cluster_load(O.config, &CL, err, sizeof(err))) {
		fprintf(stderr, "client: %s\n", err);
		return 2;
	}
	if (!O.id_base_set) {
		uint64_t seed = el_rand_seed();
		O.id_base = (el_rand(&seed) & 0x0000ffffffff0000ull) | 0x10000ull;
	}
	if (O.history) {
		HIST = fopen(O.history, "w");
		if (!HIST) {
			fprintf(stderr, "client: cannot write --history %s: %s\n", O.history, strerror(errno));
			return 2;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	el_log_tag = "client";
	int rc = parse(argc, argv);
	if (rc)
		return rc;
	if ((rc = start()))
		return rc;
	struct thread_state *ts = el_xcalloc(O.threads, sizeof(*ts));
	T0 = el_now_s();
	T_MEASURE = T0 + O.warmup;
	T_END = T_MEASURE + O.duration;
	for (uint32_t i = 0; i < O.threads; i++) {
		ts[i].idx = i;
		ts[i].client_id = O.id_base + i + 1;
		ts[i].rng = el_rand_seed() ^ ((uint64_t)i << 40);
		if (pthread_create(&ts[i].tid, NULL, run_thread, &ts[i])) {
			fprintf(stderr, "client: pthread_create failed\n");
			return 1;
		}
	}
	for (uint32_t i = 0; i < O.threads; i++)
		pthread_join(ts[i].tid, NULL);
	double t_end = el_now_s();
	double measured = t_end - (T_MEASURE < t_end ? T_MEASURE : t_end);
	if (O.duration > 0 && measured > O.duration + 0.5)
		measured = O.duration; /* threads finish their last request after the deadline */

	struct totals tot = add_up(ts);
	tot.errors += write_logs(ts);
	print_results(&tot, measured);
	for (uint32_t i = 0; i < O.threads; i++) {
		free(ts[i].lat);
		free(ts[i].acked);
		free(ts[i].acked_op);
		free(ts[i].hbuf);
		free(ts[i].tl);
	}
	free(ts);
	free(tot.lat);
	free(tot.tl);
	el_cluster_free(&CL);
	/* with -n every measured request must complete; with -d errors are failures */
	int ok = tot.errors == 0 && (!O.requests || tot.completed == O.requests);
	return ok ? 0 : 1;
}
