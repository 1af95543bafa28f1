/* SPDX-License-Identifier: MIT
 *
 * replica.c - the replica process: options, config, sockets, the eBPF pins,
 * the committed-log dump, fault injection (--drop-rate, --dup-rate,
 * --reorder-rate) and ONE single-threaded epoll loop over the UDP socket, a
 * timerfd tick, a signalfd and (with --fast-reply) the ring buffer fd. The
 * protocol itself is in vr.c; semantics in native/PROTOCOL.md.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "replica.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* committed log dump                                                 */

static const char *op_name(uint8_t op)
{
	return op == EL_OP_PUT ? "put" : op == EL_OP_GET ? "get" : "append";
}

static void dump_log(struct replica *r)
{
	if (!r->o.dump_log)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", r->o.dump_log, getpid());
	FILE *fp = fopen(tmp, "w");
	if (!fp) {
		LOG_ERROR("cannot write --dump-log %s: %s", tmp, strerror(errno));
		return;
	}
	for (uint64_t op = 1; op <= r->commit; op++) {
		const struct el_log_entry *e = el_log_get(&r->log, op);
		struct el_op o;
		if (el_op_decode(e->data, e->len, &o) != EL_OK)
			continue;
		fprintf(fp, "%llu %llu %llu %s ", (unsigned long long)op,
			(unsigned long long)e->client_id, (unsigned long long)e->request_id, op_name(o.op));
		for (uint8_t i = 0; i < o.key_len; i++) {
			uint8_t ch = o.key[i];
			if (ch > 0x20 && ch < 0x7f && ch != '\\')
				fputc(ch, fp);
			else
				fprintf(fp, "\\x%02x", ch);
		}
		fputc('\n', fp);
	}
	if (fclose(fp) != 0 || rename(tmp, r->o.dump_log) != 0) {
		LOG_ERROR("cannot write --dump-log %s: %s", r->o.dump_log, strerror(errno));
		unlink(tmp);
		return;
	}
	LOG_INFO("dumped %llu committed ops to %s", (unsigned long long)r->commit, r->o.dump_log);
}

/* ------------------------------------------------------------------ */
/* setup and loop                                                     */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: replica -c <config> -i <index> [--batch N] [--cpu K]\n"
		"               [--log-level debug|info|warn|error] [--bpf-pin-dir DIR]\n"
		"               [--fast-broadcast] [--fast-quorum] [--fast-reply]\n"
		"               [--crash-after K] [--drop-rate P] [--dup-rate P] [--reorder-rate P]\n"
		"               [--dump-log FILE]\n"
		"               [--heartbeat-ms MS] [--view-change-ms MS] [--retransmit-ms MS]\n");
}

static int die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "replica: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	usage(stderr);
	return 2;
}

enum {
	OPT_BATCH = 256, OPT_CPU, OPT_LOG, OPT_PIN, OPT_FB, OPT_FQ, OPT_FR, OPT_CRASH, OPT_DROP,
	OPT_DUMP, OPT_HB, OPT_VC, OPT_RETX, OPT_DUP, OPT_REORDER,
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "index", required_argument, NULL, 'i' },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "cpu", required_argument, NULL, OPT_CPU },
		{ "log-level", required_argument, NULL, OPT_LOG },
		{ "bpf-pin-dir", required_argument, NULL, OPT_PIN },
		{ "fast-broadcast", no_argument, NULL, OPT_FB },
		{ "fast-quorum", no_argument, NULL, OPT_FQ },
		{ "fast-reply", no_argument, NULL, OPT_FR },
		{ "crash-after", required_argument, NULL, OPT_CRASH },
		{ "drop-rate", required_argument, NULL, OPT_DROP },
		{ "dump-log", required_argument, NULL, OPT_DUMP },
		{ "dup-rate", required_argument, NULL, OPT_DUP },
		{ "reorder-rate", required_argument, NULL, OPT_REORDER },
		{ "heartbeat-ms", required_argument, NULL, OPT_HB },
		{ "view-change-ms", required_argument, NULL, OPT_VC },
		{ "retransmit-ms", required_argument, NULL, OPT_RETX },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	memset(o, 0, sizeof(*o));
	o->index = -1;
	o->batch = 1;
	o->cpu = -1;
	o->heartbeat_us = 50000;
	o->vc_timeout_us = 400000;
	o->retransmit_us = 20000;
	int c;
	uint64_t v;
	while ((c = getopt_long(argc, argv, "c:i:h", lo, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'i':
			if (el_parse_u64(optarg, 0, EL_MAX_REPLICAS - 1, &v))
				return die_usage("-i must be a replica index 0..14, got '%s'", optarg);
			o->index = (long)v;
			break;
		case OPT_BATCH:
			if (el_parse_u64(optarg, 1, 64, &v))
				return die_usage("--batch must be 1..64, got '%s'", optarg);
			o->batch = (uint32_t)v;
			break;
		case OPT_CPU:
			if (el_parse_u64(optarg, 0, CPU_SETSIZE - 1, &v))
				return die_usage("--cpu must be a CPU number, got '%s'", optarg);
			o->cpu = (long)v;
			break;
		case OPT_LOG:
			if ((el_log_threshold = el_log_level_parse(optarg)) < 0)
				return die_usage("--log-level must be debug, info, warn or error, got '%s'", optarg);
			break;
		case OPT_PIN: o->pin_dir = optarg; break;
		case OPT_FB: o->fast_broadcast = 1; break;
		case OPT_FQ: o->fast_quorum = 1; break;
		case OPT_FR: o->fast_reply = 1; break;
		case OPT_CRASH:
			if (el_parse_u64(optarg, 1, UINT64_MAX, &o->crash_after))
				return die_usage("--crash-after must be a positive op count, got '%s'", optarg);
			break;
		case OPT_DROP:
			if (el_parse_double(optarg, 0.0, 0.99, &o->drop_rate))
				return die_usage("--drop-rate must be a fraction 0..0.99, got '%s'", optarg);
			break;
		case OPT_DUP:
			if (el_parse_double(optarg, 0.0, 0.99, &o->dup_rate))
				return die_usage("--dup-rate must be a fraction 0..0.99, got '%s'", optarg);
			break;
		case OPT_REORDER:
			if (el_parse_double(optarg, 0.0, 0.99, &o->reorder_rate))
				return die_usage("--reorder-rate must be a fraction 0..0.99, got '%s'", optarg);
			break;
		case OPT_DUMP: o->dump_log = optarg; break;
		case OPT_HB:
		case OPT_VC:
		case OPT_RETX:
			if (el_parse_u64(optarg, 1, 60000, &v))
				return die_usage("timer options take milliseconds 1..60000, got '%s'", optarg);
			if (c == OPT_HB) o->heartbeat_us = v * 1000;
			else if (c == OPT_VC) o->vc_timeout_us = v * 1000;
			else o->retransmit_us = v * 1000;
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		return die_usage("unexpected argument '%s'", argv[optind]);
	if (!o->config)
		return die_usage("%s", "missing -c <config>");
	if (o->index < 0)
		return die_usage("%s", "missing -i <index>");
	if ((o->fast_broadcast || o->fast_quorum || o->fast_reply) && !o->pin_dir)
		return die_usage("%s", "the --fast-* options need --bpf-pin-dir DIR (the node's pinned maps)");
	if (o->heartbeat_us * 2 > o->vc_timeout_us)
		return die_usage("%s", "--view-change-ms must be at least twice --heartbeat-ms");
	return 0;
}

static int setup_fastpath(struct replica *r)
{
	char err[512];
	r->fp = el_fp_open(r->o.pin_dir, r->o.fast_reply, err, sizeof(err));
	if (!r->fp) {
		LOG_ERROR("%s", err);
		return -1;
	}
	uint32_t en;
	if (el_fp_enabled(r->fp, &en, err, sizeof(err))) {
		LOG_ERROR("%s", err);
		return -1;
	}
	/* The replica must never assume a fast path that the kernel side does
	 * not run: a leader that sends one broadcast copy nobody fans out
	 * starves its followers. */
	static const struct { uint32_t bit; const char *opt, *flag; } need[] = {
		{ EL_FP_BROADCAST, "--fast-broadcast", "--broadcast" },
		{ EL_FP_QUORUM, "--fast-quorum", "--quorum" },
		{ EL_FP_REPLY, "--fast-reply", "--reply" },
	};
	int want[3] = { r->o.fast_broadcast, r->o.fast_quorum, r->o.fast_reply };
	for (int i = 0; i < 3; i++) {
		if (want[i] && !(en & need[i].bit)) {
			LOG_ERROR("%s given but the eBPF side has it switched off (el_config.enabled=0x%x in "
				  "%s): run `electrode-lab attach %s` (or el-loader set --pin-dir %s %s on)",
				  need[i].opt, en, r->o.pin_dir, need[i].flag, r->o.pin_dir, need[i].flag);
			return -1;
		}
	}
	if (r->o.fast_reply) {
		r->ring_fd = el_fp_ring_fd(r->fp);
		if (r->ring_fd < 0) {
			LOG_ERROR("cannot set up the el_fr_ring ring buffer in %s: %s", r->o.pin_dir,
				  strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void on_ring_record(void *ctx, const void *data, size_t len)
{
	struct replica *r = ctx;
	vr_handle(r, data, len, NULL, 1);
}

static int setup(struct replica *r)
{
	char err[512];
	if (el_cluster_load(r->o.config, &r->cl, err, sizeof(err))) {
		LOG_ERROR("%s", err);
		return -1;
	}
	r->n = r->cl.n;
	r->f = r->cl.f;
	if ((uint64_t)r->o.index >= r->n) {
		LOG_ERROR("-i %ld: the config %s lists replicas 0..%u", r->o.index, r->o.config, r->n - 1);
		return -1;
	}
	r->me = (uint32_t)r->o.index;
	if (r->o.cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(r->o.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			LOG_ERROR("--cpu %ld: %s", r->o.cpu, strerror(errno));
			return -1;
		}
	}
	el_log_init(&r->log);
	el_kv_init(&r->kv);
	el_ctable_init(&r->ct);
	el_quorum_init(&r->q, r->n, r->f);
	el_quorum_reset(&r->q, 0);
	r->svc_view = el_xcalloc(r->n, sizeof(*r->svc_view));
	r->dvc = el_xcalloc(r->n, sizeof(*r->dvc));
	r->rng = el_rand_seed();
	r->ring_fd = -1;
	r->status = EL_STATUS_NORMAL;
	r->held = el_xmalloc(65536);

	r->sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->sock < 0) {
		LOG_ERROR("socket: %s", strerror(errno));
		return -1;
	}
	int bufsz = 8 << 20;
	setsockopt(r->sock, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	setsockopt(r->sock, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	const struct sockaddr_in *me = &r->cl.addrs[r->me];
	if (bind(r->sock, (const struct sockaddr *)me, sizeof(*me))) {
		LOG_ERROR("cannot bind %s:%u (replica %u in %s): %s; is another replica running, or is "
			  "the address not on this node?",
			  inet_ntoa(me->sin_addr), ntohs(me->sin_port), r->me, r->o.config, strerror(errno));
		return -1;
	}
	if (r->o.pin_dir && setup_fastpath(r))
		return -1;

	r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = { .it_interval = { 0, TICK_US * 1000 }, .it_value = { 0, TICK_US * 1000 } };
	if (r->tfd < 0 || timerfd_settime(r->tfd, 0, &its, NULL)) {
		LOG_ERROR("timerfd: %s", strerror(errno));
		return -1;
	}
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGUSR1);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	r->sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->sfd < 0 || r->epfd < 0) {
		LOG_ERROR("signalfd/epoll: %s", strerror(errno));
		return -1;
	}
	int fds[] = { r->sock, r->tfd, r->sfd, r->ring_fd };
	for (int i = 0; i < 4; i++) {
		if (fds[i] < 0)
			continue;
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fds[i], &ev)) {
			LOG_ERROR("epoll_ctl: %s", strerror(errno));
			return -1;
		}
	}
	r->now = el_now_us();
	r->last_heard = r->now;
	r->vc_timeout_cur = r->o.vc_timeout_us * 3 / 4 + el_rand(&r->rng) % (r->o.vc_timeout_us / 2 + 1);
	r->last_sent = 0;
	vr_sync_ctrl(r);
	vr_reset_fast_reply(r);
	return 0;
}

static void release_held(struct replica *r)
{
	if (!r->held_len)
		return;
	size_t len = r->held_len;
	r->held_len = 0;
	vr_handle(r, r->held, len, &r->held_src, 0);
}

static void drain_socket(struct replica *r)
{
	static uint8_t bufs[RECV_BATCH][65536];
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	struct sockaddr_in src[RECV_BATCH];
	for (int round = 0; round < 8; round++) {
		for (int i = 0; i < RECV_BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = sizeof(bufs[i]);
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &src[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(src[i]);
		}
		int got = recvmmsg(r->sock, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (got <= 0)
			break;
		r->now = el_now_us();
		for (int i = 0; i < got; i++) {
			r->stat_rx++;
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				r->stat_malformed++;
				continue;
			}
			if (r->o.drop_rate > 0 && el_rand_unit(&r->rng) < r->o.drop_rate) {
				r->stat_dropped++;
				continue;
			}
			if (r->o.reorder_rate > 0 && !r->held_len && el_rand_unit(&r->rng) < r->o.reorder_rate) {
				memcpy(r->held, bufs[i], msgs[i].msg_len);
				r->held_len = msgs[i].msg_len;
				r->held_src = src[i];
				r->stat_reordered++;
				continue;
			}
			vr_handle(r, bufs[i], msgs[i].msg_len, &src[i], 0);
			if (r->o.dup_rate > 0 && el_rand_unit(&r->rng) < r->o.dup_rate) {
				r->stat_dup++;
				vr_handle(r, bufs[i], msgs[i].msg_len, &src[i], 0);
			}
			release_held(r);
		}
		vr_flush_pending(r);
		vr_sync_ctrl(r);
		if (got < RECV_BATCH)
			break;
	}
}

int main(int argc, char **argv)
{
	el_log_tag = "replica";
	static struct replica rep;
	struct replica *r = &rep;
	int rc = parse_opts(argc, argv, &r->o);
	if (rc)
		return rc;
	static char tag[32];
	snprintf(tag, sizeof(tag), "replica%ld", r->o.index);
	el_log_tag = tag;
	if (setup(r))
		return 1;
	const struct sockaddr_in *me = &r->cl.addrs[r->me];
	LOG_INFO("replica %u ready on %s:%u (n=%u f=%u batch=%u%s%s%s%s)", r->me, inet_ntoa(me->sin_addr),
		 ntohs(me->sin_port), r->n, r->f, r->o.batch, r->fp ? " bpf" : "",
		 r->o.fast_broadcast ? " fast-broadcast" : "", r->o.fast_quorum ? " fast-quorum" : "",
		 r->o.fast_reply ? " fast-reply" : "");
	while (!r->stop) {
		struct epoll_event evs[4];
		int k = epoll_wait(r->epfd, evs, 4, -1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			LOG_ERROR("epoll_wait: %s", strerror(errno));
			break;
		}
		r->now = el_now_us();
		for (int i = 0; i < k; i++) {
			int fd = evs[i].data.fd;
			if (fd == r->sock) {
				drain_socket(r);
			} else if (fd == r->tfd) {
				uint64_t ticks;
				ssize_t rr = read(r->tfd, &ticks, sizeof(ticks));
				(void)rr;
				release_held(r);
				vr_flush_pending(r);
				vr_on_tick(r);
			} else if (fd == r->ring_fd) {
				el_fp_consume(r->fp, on_ring_record, r);
				vr_flush_pending(r);
				vr_sync_ctrl(r);
			} else if (fd == r->sfd) {
				struct signalfd_siginfo si;
				while (read(r->sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGUSR1) {
						dump_log(r);
					} else {
						LOG_INFO("signal %u: stopping", si.ssi_signo);
						r->stop = 1;
					}
				}
			}
		}
	}
	dump_log(r);
	LOG_INFO("stats: rx %llu, malformed %llu, dropped (--drop-rate) %llu, duplicated %llu, "
		 "reordered %llu, fast-reply records %llu, view %llu, last op %llu, commit %llu",
		 (unsigned long long)r->stat_rx, (unsigned long long)r->stat_malformed,
		 (unsigned long long)r->stat_dropped, (unsigned long long)r->stat_dup,
		 (unsigned long long)r->stat_reordered, (unsigned long long)r->stat_fr_records,
		 (unsigned long long)r->view, (unsigned long long)r->log.last,
		 (unsigned long long)r->commit);
	el_fp_close(r->fp);
	for (uint32_t i = 0; i < r->n; i++)
		free(r->dvc[i].buf);
	free(r->dvc);
	free(r->svc_view);
	free(r->my_dvc);
	free(r->pend);
	free(r->held);
	free(r->prep_end);
	el_log_free(&r->log);
	el_kv_free(&r->kv);
	el_ctable_free(&r->ct);
	el_quorum_free(&r->q);
	el_cluster_free(&r->cl);
	close(r->sock);
	close(r->tfd);
	close(r->sfd);
	close(r->epfd);
	return 0;
}
