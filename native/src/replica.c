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
#include <fcntl.h>
#include <unistd.h>

#include "peer.h"
#include "relay.h"
#include "replica.h"
#include "util.h"
#ifdef EL_LAB_FAULTS
#include "lab_faults.h"
#endif

/* ------------------------------------------------------------------ */
/* committed log dump                                                 */

static const char *op_name(uint8_t op)
{
	return op == EL_OP_PUT ? "put" : op == EL_OP_GET ? "get" : "append";
}

/* Whole lines only reach the file, so a reader never sees half a line. */
static void dump_flush(struct replica *r)
{
	if (r->dump_fd < 0 || !r->dump_len)
		return;
	size_t off = 0;
	while (off < r->dump_len) {
		ssize_t w = write(r->dump_fd, r->dump_buf + off, r->dump_len - off);
		if (w <= 0) {
			LOG_ERROR("cannot write --dump-log %s: %s", r->o.dump_log, strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	r->dump_len = 0;
}

/* Buffered: the dump is written in large blocks, flushed on SIGUSR1 and at exit. */
static void dump_append(struct replica *r, const char *line, size_t n)
{
	if (r->dump_len + n > sizeof(r->dump_buf))
		dump_flush(r);
	memcpy(r->dump_buf + r->dump_len, line, n);
	r->dump_len += n;
}

/* The core's committed() hook: one line per op as it commits. */
static void env_committed(void *ctx, uint64_t opnum, const struct el_log_entry *e)
{
	struct replica *r = ctx;
	struct el_op o;
	char line[EL_MAX_KEY * 4 + 96];
	if (!e || el_op_decode(e->data, e->len, &o) != EL_OK)
		return;
	int n = snprintf(line, sizeof(line), "%llu %llu %llu %s ", (unsigned long long)opnum,
			 (unsigned long long)e->client_id, (unsigned long long)e->request_id, op_name(o.op));
	for (uint8_t i = 0; i < o.key_len; i++) {
		uint8_t ch = o.key[i];
		if (ch > 0x20 && ch < 0x7f && ch != '\\')
			line[n++] = (char)ch;
		else
			n += snprintf(line + n, sizeof(line) - (size_t)n, "\\x%02x", ch);
	}
	line[n++] = '\n';
	dump_append(r, line, (size_t)n);
}

/* A snapshot replaced the executed state up to op `op`: the dump says so,
 * so a checker knows the next op it lists follows op `op`, not the last op
 * listed (a follower behind the logs catches up this way mid-life). */
static void dump_snapshot(void *ctx, uint64_t op)
{
	struct replica *r = ctx;
	char line[48];
	int n;
	if (r->dump_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "# snapshot %llu\n", (unsigned long long)op);
	dump_append(r, line, (size_t)n);
}

static int open_dump(struct replica *r)
{
	r->dump_fd = -1;
	if (!r->o.dump_log)
		return 0;
	r->dump_fd = open(r->o.dump_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (r->dump_fd < 0) {
		LOG_ERROR("cannot write --dump-log %s: %s", r->o.dump_log, strerror(errno));
		return -1;
	}
	return 0;
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
		"               [--heartbeat-ms MS] [--view-change-ms MS] [--retransmit-ms MS]\n"
		"               [--relay-floor]  (the bench's relay floor: replica 0 sends each client\n"
		"                                 request to the others, answers after f came back; no protocol)\n"
		"the client table's size is the config's `max-clients <n>` line (every replica must agree)\n");
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
	OPT_DUMP, OPT_HB, OPT_VC, OPT_RETX, OPT_DUP, OPT_REORDER, OPT_MAXCL, OPT_LAB_NO_RECOVERY, OPT_RELAY,
#ifdef EL_LAB_FAULTS
	OPT_LAB_SEED,
#endif
};

static const struct option long_opts[] = {
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
	{ "max-clients", required_argument, NULL, OPT_MAXCL },
	{ "relay-floor", no_argument, NULL, OPT_RELAY },
	/* known to every build so the normal one can say why it refuses it */
	{ "lab-no-recovery", no_argument, NULL, OPT_LAB_NO_RECOVERY },
#ifdef EL_LAB_FAULTS
	{ "lab-seed", required_argument, NULL, OPT_LAB_SEED },
#endif
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static void opts_defaults(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->index = -1;
	o->batch = 1;
	o->cpu = -1;
	o->heartbeat_us = 50000;
	o->vc_timeout_us = 400000;
	o->retransmit_us = 20000;
}

/* One option getopt_long returned; 0, or the exit status of a refusal. */
static int apply_opt(int c, struct opts *o)
{
	uint64_t v;
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
	case OPT_RELAY: o->relay_floor = 1; break;
	case OPT_MAXCL:
		return die_usage("--max-clients %s: the client table's size decides which client is forgotten, "
				 "so every replica must use the same one; it is the replica config's "
				 "`max-clients <n>` line now (the lab spec's maxClients)", optarg);
	case OPT_HB:
	case OPT_VC:
	case OPT_RETX:
		if (el_parse_u64(optarg, 1, 60000, &v))
			return die_usage("timer options take milliseconds 1..60000, got '%s'", optarg);
		if (c == OPT_HB) o->heartbeat_us = v * 1000;
		else if (c == OPT_VC) o->vc_timeout_us = v * 1000;
		else o->retransmit_us = v * 1000;
		break;
#ifdef EL_LAB_FAULTS
	case OPT_LAB_SEED:
		if (el_lab_set_seed(optarg))
			return die_usage("--lab-seed must be <seed>:<lab>, got '%s'", optarg);
		break;
	case OPT_LAB_NO_RECOVERY: el_lab_no_recovery = 1; break;
#else
	case OPT_LAB_NO_RECOVERY:
		return die_usage("%s", "--lab-no-recovery exists only in the lab build (native/build/lab/replica, "
		                       "made by `electrode-lab bench --unsafe-no-recovery`): it loses acknowledged "
		                       "writes on purpose; this replica always recovers (VR Revisited 4.3)");
#endif
	case 'h': usage(stdout); exit(0);
	default: usage(stderr); return 2;
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	opts_defaults(o);
	int c, rc;
	while ((c = getopt_long(argc, argv, "c:i:h", long_opts, NULL)) != -1)
		if ((rc = apply_opt(c, o)))
			return rc;
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
	if (o->relay_floor && (o->pin_dir || o->dump_log || o->crash_after))
		return die_usage("%s", "--relay-floor runs no protocol: no --bpf-pin-dir, --fast-*, --dump-log "
				       "or --crash-after");
	return 0;
}

/* Whether to compare the pinned maps' cluster with this replica's config.
 * The crash-hunt lab build plants the course project's unknown port and
 * shared pins, which that project had no check for; every other build
 * refuses them at start. */
static int check_cluster(void)
{
#ifdef EL_LAB_FAULTS
	return el_lab_fault != EL_LAB_UNKNOWN_PORT && el_lab_fault != EL_LAB_SHARED_PINS;
#else
	return 1;
#endif
}

static int setup_fastpath(struct replica *r)
{
	char err[512];
	r->fp = el_fp_open(r->o.pin_dir, r->o.fast_reply, err, sizeof(err));
	if (!r->fp || (check_cluster() && el_fp_check_cluster(r->fp, r->o.pin_dir, r->cl.n, r->cl.f,
							      (uint32_t)r->o.index, r->cl.addrs, err, sizeof(err)))) {
		LOG_ERROR("%s", err);
		return -1;
	}
	uint32_t en = el_fp_enabled(r->fp);
	/* The replica must never assume a fast path that the kernel side does
	 * not run: a leader that sends one broadcast copy nobody fans out
	 * starves its followers. (At run time it looks again before each send.) */
	static const struct { uint32_t bit; const char *opt, *flag; } need[] = {
		{ EL_FP_BROADCAST, "--fast-broadcast", "--broadcast" },
		{ EL_FP_QUORUM, "--fast-quorum", "--quorum" },
		{ EL_FP_REPLY, "--fast-reply", "--reply" },
	};
	int want[3] = { r->o.fast_broadcast, r->o.fast_quorum, r->o.fast_reply };
	for (int i = 0; i < 3; i++) {
		if (!want[i] || (en & need[i].bit))
			continue;
		if (!(el_fp_loaded(r->fp) & need[i].bit))
			LOG_ERROR("%s given but this kernel's verifier rejected that fast path at attach (el_config.loaded=0x%x "
				  "in %s): see the output of `electrode-lab attach` for why",
				  need[i].opt, el_fp_loaded(r->fp), r->o.pin_dir);
		else
			LOG_ERROR("%s given but the eBPF side has it switched off (el_config.enabled=0x%x in "
				  "%s): run `electrode-lab attach %s` (or el-loader set --pin-dir %s %s on)",
				  need[i].opt, en, r->o.pin_dir, need[i].flag, r->o.pin_dir, need[i].flag);
		return -1;
	}
	return 0;
}

/* ---- the core's environment ---------------------------------------- */

static void env_send(void *ctx, uint32_t idx, const void *buf, size_t len)
{
	struct replica *r = ctx;
	const struct sockaddr_in *to = &r->cl.addrs[idx];
	if (sendto(r->sock, buf, len, 0, (const struct sockaddr *)to, sizeof(*to)) < 0 && errno != EAGAIN &&
	    errno != EWOULDBLOCK)
		LOG_DEBUG("sendto replica %u: %s", idx, strerror(errno));
}

static void env_send_client(void *ctx, const struct sockaddr_in *to, const void *buf, size_t len)
{
	struct replica *r = ctx;
	if (sendto(r->sock, buf, len, 0, (const struct sockaddr *)to, sizeof(*to)) < 0 && errno != EAGAIN &&
	    errno != EWOULDBLOCK)
		LOG_DEBUG("sendto %s:%u: %s", inet_ntoa(to->sin_addr), ntohs(to->sin_port), strerror(errno));
}

static void env_publish(void *ctx, const struct vr_public *p)
{
	struct replica *r = ctx;
	uint64_t view = p->view;
	uint32_t status = p->status;
#ifdef EL_LAB_FAULTS
	el_lab_kernel_view(&view, &status);
#endif
	el_fp_publish(r->fp, view, status, p->last_op, p->commit);
}

static void on_ring_record(void *ctx, const void *data, size_t len)
{
	struct replica *r = ctx;
	vr_kernel_record(&r->vr, data, len);
}

static void env_quiesce(void *ctx, uint64_t view)
{
	struct replica *r = ctx;
	uint64_t waited = el_fp_close_gate(r->fp, view);
	int n = el_fp_consume(r->fp, on_ring_record, r);
	r->quiesces++;
	if (waited > r->quiesce_max_ns)
		r->quiesce_max_ns = waited;
	LOG_DEBUG("fast reply gate closed for view %llu: waited %llu ns, %d records drained",
		  (unsigned long long)view, (unsigned long long)waited, n);
}

static void env_arm_reply(void *ctx, uint64_t view, uint64_t last_op)
{
	struct replica *r = ctx;
	el_fp_arm_reply(r->fp, view, last_op);
}

static void env_reply_progress(void *ctx, uint64_t last_op)
{
	struct replica *r = ctx;
	el_fp_reply_progress(r->fp, last_op);
}

static uint32_t env_enabled(void *ctx)
{
	struct replica *r = ctx;
	return el_fp_enabled(r->fp);
}

static uint64_t env_quorum_token(void *ctx)
{
	struct replica *r = ctx;
	return el_fp_quorum_token(r->fp);
}

static void drain_ring(struct replica *r)
{
	if (r->o.fast_reply)
		el_fp_consume(r->fp, on_ring_record, r);
}

static int setup_socket(struct replica *r)
{
	r->sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->sock < 0) {
		LOG_ERROR("socket: %s", strerror(errno));
		return -1;
	}
	int bufsz = 8 << 20;
	setsockopt(r->sock, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	setsockopt(r->sock, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	uint32_t me = (uint32_t)r->o.index;
	const struct sockaddr_in *addr = &r->cl.addrs[me];
	if (bind(r->sock, (const struct sockaddr *)addr, sizeof(*addr))) {
		LOG_ERROR("cannot bind %s:%u (replica %u in %s): %s; is another replica running, or is "
			  "the address not on this node?",
			  inet_ntoa(addr->sin_addr), ntohs(addr->sin_port), me, r->o.config, strerror(errno));
		return -1;
	}
	return 0;
}

/* The protocol core and what it calls back for (send, dump, fast paths). */
static int setup_vr(struct replica *r)
{
	uint32_t me = (uint32_t)r->o.index;
	struct vr_opts vo = {
		.batch = r->o.batch,
		.heartbeat_us = r->o.heartbeat_us,
		.vc_timeout_us = r->o.vc_timeout_us,
		.retransmit_us = r->o.retransmit_us,
		.crash_after = r->o.crash_after,
		.max_prepare = r->cl.mtu - 20 - 8,
		.max_clients = r->cl.max_clients,
		.fast_broadcast = r->o.fast_broadcast,
		/* a mark counts only with the token the loader gave the quorum prune
		 * (el_config.quorum_token), so trusting it needs no --fast-quorum */
		.kernel_quorum = r->fp != NULL,
		.window_ops = r->fp != NULL ? EL_QSLOTS - 1 : 0,
		.fast_reply = r->o.fast_reply,
		/* a process that starts has no state: it recovers (VR Revisited
		 * 4.3), or forms a new cluster with replicas that hold nothing */
		.recover = 1,
	};
#ifdef EL_LAB_FAULTS
	/* the bench's negative control: the old unsafe start, to prove its
	 * checker sees lost writes; src/core/replicaStatus.ts reads this line as
	 * "normal in view 0" (no `view V normal` line follows) */
	if (el_lab_no_recovery) {
		LOG_WARN("%s", "--lab-no-recovery: UNSAFE, lab build only: starting in view 0 normal with empty state, no recovery");
		vo.recover = 0;
	}
#endif
	struct vr_env env = { .ctx = r, .send = env_send, .send_client = env_send_client };
	if (open_dump(r))
		return -1;
	if (r->dump_fd >= 0) {
		env.committed = env_committed;
		env.installed = dump_snapshot;
	}
	if (r->fp) {
		env.publish = env_publish;
		env.quiesce = env_quiesce;
		env.arm_reply = env_arm_reply;
		env.reply_progress = env_reply_progress;
		env.enabled = env_enabled;
		env.quorum_token = env_quorum_token;
		/* only a replica that drains the ring may let its kernel acknowledge:
		 * `el-loader set --reply on` under one started without --fast-reply
		 * must not make the kernel ack ops this replica never sees */
		if (r->o.fast_reply)
			el_fp_renew_lease(r->fp, LEASE_NS);
		else
			el_fp_end_lease(r->fp);
	}
	vr_init(&r->vr, &vo, &env, r->cl.n, r->cl.f, me, el_rand(&r->rng), el_now_us());
	return 0;
}

/* The tick timer, the signals and the epoll set the loop waits on. */
static int setup_events(struct replica *r)
{
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
	/* no ring fd here: the fast reply submits without wakeups, the loop
	 * drains the ring whenever it runs and at least every tick */
	int fds[] = { r->sock, r->tfd, r->sfd };
	for (int i = 0; i < 3; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fds[i], &ev)) {
			LOG_ERROR("epoll_ctl: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int setup(struct replica *r)
{
	char err[512];
	if (el_cluster_load(r->o.config, &r->cl, err, sizeof(err))) {
		LOG_ERROR("%s", err);
		return -1;
	}
	if ((uint64_t)r->o.index >= r->cl.n) {
		LOG_ERROR("-i %ld: the config %s lists replicas 0..%u", r->o.index, r->o.config, r->cl.n - 1);
		return -1;
	}
	if (r->o.cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(r->o.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			LOG_ERROR("--cpu %ld: %s", r->o.cpu, strerror(errno));
			return -1;
		}
	}
	r->rng = el_rand_seed();
	r->held = el_xmalloc(65536);

	if (setup_socket(r))
		return -1;
	if (r->o.pin_dir && setup_fastpath(r))
		return -1;

	if (r->o.relay_floor)
		el_ctable_init(&r->relay.clients, 0);
	else if (setup_vr(r))
		return -1;
	return setup_events(r);
}

/* A dropped spoofed datagram: counted always, logged the first 10 times and
 * then at most once a second (a flood must not become a flood of lines). */
static void note_spoofed(struct replica *r, int verdict, const struct el_peer_claim *c, const struct sockaddr_in *src)
{
	r->stat_spoofed++;
	r->spoofed_unlogged++;
	if (r->stat_spoofed > 10 && r->now - r->spoof_logged_us < 1000000)
		return;
	char from[EL_ADDR_STRLEN], want[EL_ADDR_STRLEN];
	el_addr_str(src->sin_addr.s_addr, src->sin_port, from, sizeof(from));
	if (verdict == EL_PEER_WRONG_SOURCE) {
		const struct sockaddr_in *w = &r->cl.addrs[c->replica];
		el_addr_str(w->sin_addr.s_addr, w->sin_port, want, sizeof(want));
		LOG_WARN("spoofed: dropped a type-%u message naming replica %u from %s (replica %u is %s in %s); "
			 "%llu dropped so far, %llu since the last such line",
			 c->type, c->replica, from, c->replica, want, r->o.config,
			 (unsigned long long)r->stat_spoofed, (unsigned long long)r->spoofed_unlogged);
	} else {
		LOG_WARN("spoofed: dropped a client request from %s, the address of replica %u (clients send from "
			 "addresses that are no replica's); %llu dropped so far, %llu since the last such line",
			 from, c->replica, (unsigned long long)r->stat_spoofed,
			 (unsigned long long)r->spoofed_unlogged);
	}
	r->spoof_logged_us = r->now;
	r->spoofed_unlogged = 0;
}

static void handle(struct replica *r, const void *buf, size_t len, const struct sockaddr_in *src)
{
	if (r->o.relay_floor) {
		el_relay_handle(r, buf, len, src);
		return;
	}
	struct el_peer_claim claim;
	int v = el_peer_check(r->cl.addrs, r->cl.n, buf, len, src, &claim);
	if (v != EL_PEER_OK) {
		note_spoofed(r, v, &claim, src);
		return;
	}
	vr_receive(&r->vr, buf, len, src, r->now);
}

static void release_held(struct replica *r)
{
	if (!r->held_len)
		return;
	size_t len = r->held_len;
	r->held_len = 0;
	handle(r, r->held, len, &r->held_src);
}

static void drain_socket(struct replica *r)
{
	static uint8_t bufs[RECV_BATCH][65536];
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	struct sockaddr_in src[RECV_BATCH];
	for (int round = 0; round < RECV_ROUNDS; round++) {
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
				r->vr.st.malformed++;
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
			handle(r, bufs[i], msgs[i].msg_len, &src[i]);
			if (r->o.dup_rate > 0 && el_rand_unit(&r->rng) < r->o.dup_rate) {
				r->stat_dup++;
				handle(r, bufs[i], msgs[i].msg_len, &src[i]);
			}
			release_held(r);
		}
		/* a full batch goes out at once; a partial one waits for the end
		 * of the drain (--batch above RECV_BATCH fills across rounds) */
		if (!r->o.relay_floor && r->vr.npend >= r->o.batch)
			vr_flush(&r->vr);
		if (got < RECV_BATCH)
			break;
	}
	if (!r->o.relay_floor)
		vr_flush(&r->vr);
}

static void on_tick(struct replica *r)
{
	uint64_t ticks;
	ssize_t rr = read(r->tfd, &ticks, sizeof(ticks));
	(void)rr;
	if (r->fp && r->o.fast_reply)
		el_fp_renew_lease(r->fp, LEASE_NS);
	release_held(r);
	if (r->o.relay_floor)
		return;
	vr_flush(&r->vr);
	vr_tick(&r->vr, r->now);
}

static void on_signals(struct replica *r)
{
	struct signalfd_siginfo si;
	while (read(r->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			drain_ring(r);
			dump_flush(r);
		} else {
			LOG_INFO("signal %u: stopping", si.ssi_signo);
			r->stop = 1;
		}
	}
}

static void run(struct replica *r)
{
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
		/* whatever woke us: the kernel's acknowledged Prepares first */
		drain_ring(r);
		for (int i = 0; i < k; i++) {
			int fd = evs[i].data.fd;
			if (fd == r->sock) {
				drain_socket(r);
			} else if (fd == r->tfd) {
				on_tick(r);
			} else if (fd == r->sfd) {
				on_signals(r);
			}
		}
	}
}

/* The kernel stops acknowledging for a replica that is gone; what was committed reaches the dump. */
static void wind_down(struct replica *r)
{
	if (r->fp) {
		el_fp_end_lease(r->fp);
		el_fp_close_gate(r->fp, r->vr.view);
	}
	drain_ring(r);
	dump_flush(r);
	if (r->dump_fd >= 0)
		close(r->dump_fd);
}

static void log_stats(const struct replica *r)
{
	const struct vr_stats *st = &r->vr.st;
	LOG_INFO("stats: rx %llu, malformed %llu, spoofed %llu, dropped (--drop-rate) %llu, duplicated %llu, "
		 "reordered %llu, fast-reply records %llu (late %llu, gap %llu), quorum marks %llu (forged %llu), gate closes %llu "
		 "(max wait %llu us), client table %zu (evicted %llu, refused without a session %llu), window full %llu, "
		 "recoveries %llu (rounds %llu), snapshots served %llu (chunks %llu), installed %llu (refused %llu), "
		 "acks beyond the log %llu, view claims refused %llu, view changes not joined (leader alive) %llu, rejoins %llu, "
		 "leader-only messages from another replica %llu, "
		 "status %s, view %llu, first op %llu, "
		 "last op %llu, commit %llu",
		 (unsigned long long)r->stat_rx, (unsigned long long)st->malformed, (unsigned long long)r->stat_spoofed,
		 (unsigned long long)r->stat_dropped, (unsigned long long)r->stat_dup,
		 (unsigned long long)r->stat_reordered, (unsigned long long)st->fr_records,
		 (unsigned long long)st->fr_late, (unsigned long long)st->fr_gap,
		 (unsigned long long)st->quorum_marks, (unsigned long long)st->forged_marks, (unsigned long long)r->quiesces,
		 (unsigned long long)r->quiesce_max_ns / 1000, r->vr.ct.used, (unsigned long long)r->vr.ct.evicted, (unsigned long long)st->expired_requests,
		 (unsigned long long)st->window_full, (unsigned long long)st->recoveries,
		 (unsigned long long)st->recovery_rounds, (unsigned long long)st->snaps_served,
		 (unsigned long long)st->snap_chunks_sent, (unsigned long long)st->snaps_installed,
		 (unsigned long long)st->snaps_refused, (unsigned long long)st->acks_beyond_log,
		 (unsigned long long)st->view_jumps, (unsigned long long)st->sticky, (unsigned long long)st->rejoins,
		 (unsigned long long)st->not_leader,
		 vr_status_name(r->vr.status), (unsigned long long)r->vr.view,
		 (unsigned long long)r->vr.log.first, (unsigned long long)r->vr.log.last,
		 (unsigned long long)r->vr.commit);
}

static void teardown(struct replica *r)
{
	el_fp_close(r->fp);
	if (r->o.relay_floor)
		el_ctable_free(&r->relay.clients);
	else
		vr_free(&r->vr);
	free(r->held);
	el_cluster_free(&r->cl);
	close(r->sock);
	close(r->tfd);
	close(r->sfd);
	close(r->epfd);
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
	const struct sockaddr_in *me = &r->cl.addrs[r->o.index];
	LOG_INFO("replica %ld ready on %s:%u (n=%u f=%u batch=%u mtu=%u%s%s%s%s%s)", r->o.index, inet_ntoa(me->sin_addr),
		 ntohs(me->sin_port), r->cl.n, r->cl.f, r->o.batch, r->cl.mtu, r->fp ? " bpf" : "",
		 r->o.fast_broadcast ? " fast-broadcast" : "", r->o.fast_quorum ? " fast-quorum" : "",
		 r->o.fast_reply ? " fast-reply" : "", r->o.relay_floor ? " relay-floor" : "");
	run(r);
	if (r->o.relay_floor) {
		LOG_INFO("relay: rx %llu, forwarded %llu, sent %llu (failed %llu), late %llu, refused %llu",
			 (unsigned long long)r->stat_rx, (unsigned long long)r->relay.forwarded,
			 (unsigned long long)r->relay.sent, (unsigned long long)r->relay.send_failed,
			 (unsigned long long)r->relay.late, (unsigned long long)r->relay.refused);
	} else {
		wind_down(r);
		log_stats(r);
	}
	teardown(r);
	return 0;
}
