/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "fastpath.h"
#include "util.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

struct mapped {
	int fd;
	void *mem;
	size_t len;
	uint32_t entries;
};

struct el_fastpath {
	struct mapped ctrl, config, fr_state, busy;
	int ring_fd;
	struct ring_buffer *rb;
	el_fp_record_cb cb;
	void *cb_ctx;
	uint64_t gen;
};

static int open_pin(const char *dir, const char *name, size_t value_size, struct mapped *m, int prot, char *err,
		    size_t errlen)
{
	char path[512];
	struct bpf_map_info info;
	uint32_t len = sizeof(info);
	long page = sysconf(_SC_PAGESIZE);

	m->fd = -1;
	m->mem = NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	m->fd = bpf_obj_get(path);
	if (m->fd < 0) {
		snprintf(err, errlen,
			 "cannot open pinned map %s: %s; attach the fast paths first with "
			 "`electrode-lab attach` (or el-loader attach --pin-dir %s)",
			 path, strerror(errno), dir);
		return -1;
	}
	if (!value_size)
		return 0;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(m->fd, &info, &len) || info.value_size != value_size) {
		snprintf(err, errlen,
			 "pinned map %s has value size %u, this replica expects %zu: the eBPF programs and the "
			 "replica were built from different el_proto.h; rebuild both (npm run build) and re-run "
			 "`electrode-lab attach`",
			 path, info.value_size, value_size);
		return -1;
	}
	m->entries = info.max_entries;
	m->len = ((size_t)info.value_size * info.max_entries + (size_t)page - 1) / (size_t)page * (size_t)page;
	m->mem = mmap(NULL, m->len, prot, MAP_SHARED, m->fd, 0);
	if (m->mem == MAP_FAILED) {
		m->mem = NULL;
		snprintf(err, errlen,
			 "cannot map %s: %s; it must be an mmapable array (BPF_F_MMAPABLE, Linux 5.5+): re-run "
			 "`electrode-lab attach` with this build's loader",
			 path, strerror(errno));
		return -1;
	}
	return 0;
}

static void unmap(struct mapped *m)
{
	if (m->mem)
		munmap(m->mem, m->len);
	if (m->fd >= 0)
		close(m->fd);
	m->mem = NULL;
	m->fd = -1;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct el_fastpath *fp = ctx;
	struct el_fr_record rec;

	if (size < sizeof(rec))
		return 0;
	memcpy(&rec, data, sizeof(rec));
	if (rec.len > size - sizeof(rec))
		return 0; /* never trust the length blindly */
	fp->cb(fp->cb_ctx, (const uint8_t *)data + sizeof(rec), rec.len);
	return 0;
}

struct el_fastpath *el_fp_open(const char *dir, int need_ring, char *err, size_t errlen)
{
	struct el_fastpath *fp = el_xcalloc(1, sizeof(*fp));
	char path[512];

	fp->ctrl.fd = fp->config.fd = fp->fr_state.fd = fp->busy.fd = fp->ring_fd = -1;
	if (open_pin(dir, EL_STR(EL_MAP_CTRL), sizeof(struct el_ctrl), &fp->ctrl, PROT_READ | PROT_WRITE, err, errlen) ||
	    open_pin(dir, EL_STR(EL_MAP_CONFIG), sizeof(struct el_config), &fp->config, PROT_READ, err, errlen))
		goto fail;
	/* el_fr_state is armed on every view change even without --fast-reply,
	 * so a fast reply switched on later never starts from stale progress */
	snprintf(path, sizeof(path), "%s/%s", dir, EL_STR(EL_MAP_FR_STATE));
	if ((need_ring || access(path, F_OK) == 0) &&
	    open_pin(dir, EL_STR(EL_MAP_FR_STATE), sizeof(struct el_fr_state), &fp->fr_state, PROT_READ | PROT_WRITE, err,
		     errlen))
		goto fail;
	if (need_ring) {
		if (open_pin(dir, EL_STR(EL_MAP_FR_BUSY), sizeof(struct el_fr_busy), &fp->busy, PROT_READ, err, errlen))
			goto fail;
		struct mapped ring;
		if (open_pin(dir, EL_STR(EL_MAP_FR_RING), 0, &ring, 0, err, errlen))
			goto fail;
		fp->ring_fd = ring.fd;
		fp->rb = ring_buffer__new(fp->ring_fd, on_record, fp, NULL);
		if (!fp->rb) {
			snprintf(err, errlen, "cannot set up the el_fr_ring ring buffer in %s: %s", dir, strerror(errno));
			goto fail;
		}
	}
	return fp;
fail:
	el_fp_close(fp);
	return NULL;
}

int el_fp_check_cluster(const struct el_fastpath *fp, const char *dir, uint32_t n, uint32_t f, uint32_t idx,
			const struct sockaddr_in *addrs, char *err, size_t errlen)
{
	const volatile struct el_config *cfg = fp->config.mem;
	const char *fix = "attach this node's fast paths for this lab (`electrode-lab attach`) or pass this "
			  "node's --bpf-pin-dir";
	char want[32], got[32], path[512];
	struct bpf_map_info info;
	uint32_t len = sizeof(info);
	int fd, bad = 0;

	if (cfg->n_replicas != n || cfg->f != f || cfg->my_idx != idx) {
		snprintf(err, errlen,
			 "the fast paths in %s were attached for replica %u of %u (f=%u), this replica is %u of %u "
			 "(f=%u) in its config: %s",
			 dir, cfg->my_idx, cfg->n_replicas, cfg->f, idx, n, f, fix);
		return -1;
	}
	if (cfg->my_ip != addrs[idx].sin_addr.s_addr || cfg->my_port != addrs[idx].sin_port) {
		snprintf(err, errlen, "the fast paths in %s were attached for %s, this replica's config says %s: %s",
			 dir, el_addr_str(cfg->my_ip, cfg->my_port, got, sizeof(got)),
			 el_addr_str(addrs[idx].sin_addr.s_addr, addrs[idx].sin_port, want, sizeof(want)), fix);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/el_peers", dir);
	if ((fd = bpf_obj_get(path)) < 0) {
		snprintf(err, errlen, "cannot open pinned map %s: %s; %s", path, strerror(errno), fix);
		return -1;
	}
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.value_size != sizeof(struct el_peer) ||
	    info.max_entries != n) {
		snprintf(err, errlen, "pinned map %s holds %u peers of %u bytes, this replica's config lists %u: %s",
			 path, info.max_entries, info.value_size, n, fix);
		close(fd);
		return -1;
	}
	for (uint32_t i = 0; i < n && !bad; i++) {
		struct el_peer p;

		if (bpf_map_lookup_elem(fd, &i, &p)) {
			snprintf(err, errlen, "cannot read %s[%u]: %s", path, i, strerror(errno));
			bad = 1;
		} else if (p.ip != addrs[i].sin_addr.s_addr || p.port != addrs[i].sin_port) {
			snprintf(err, errlen, "the fast paths in %s know replica %u as %s, this replica's config says %s: %s",
				 dir, i, el_addr_str(p.ip, p.port, got, sizeof(got)),
				 el_addr_str(addrs[i].sin_addr.s_addr, addrs[i].sin_port, want, sizeof(want)), fix);
			bad = 1;
		}
	}
	close(fd);
	return bad ? -1 : 0;
}

void el_fp_close(struct el_fastpath *fp)
{
	if (!fp)
		return;
	if (fp->rb)
		ring_buffer__free(fp->rb);
	if (fp->ring_fd >= 0)
		close(fp->ring_fd);
	unmap(&fp->ctrl);
	unmap(&fp->config);
	unmap(&fp->fr_state);
	unmap(&fp->busy);
	free(fp);
}

static volatile struct el_ctrl *ctl(struct el_fastpath *fp)
{
	return (volatile struct el_ctrl *)fp->ctrl.mem;
}

uint32_t el_fp_enabled(const struct el_fastpath *fp)
{
	return ((const volatile struct el_config *)fp->config.mem)->enabled;
}

uint32_t el_fp_loaded(const struct el_fastpath *fp)
{
	return ((const volatile struct el_config *)fp->config.mem)->loaded;
}

uint64_t el_fp_quorum_token(const struct el_fastpath *fp)
{
	return ((const volatile struct el_config *)fp->config.mem)->quorum_token;
}

void el_fp_publish(struct el_fastpath *fp, uint64_t view, uint32_t status, uint64_t last_op, uint64_t commit)
{
	volatile struct el_ctrl *c = ctl(fp);

	c->last_op = last_op;
	c->commit = commit;
	c->gen = ++fp->gen;
	/* the word the programs decide on goes last (stores are not reordered on x86) */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	c->view_status = EL_VS(view, status);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void el_fp_renew_lease(struct el_fastpath *fp, uint64_t lease_ns)
{
	ctl(fp)->lease_ns = now_ns() + lease_ns;
}

void el_fp_end_lease(struct el_fastpath *fp)
{
	ctl(fp)->lease_ns = 0;
}

uint64_t el_fp_close_gate(struct el_fastpath *fp, uint64_t view)
{
	volatile struct el_fr_busy *b = fp->busy.mem;
	uint64_t t0 = now_ns(), warned = t0;

	ctl(fp)->view_status = EL_VS(view, EL_STATUS_VIEW_CHANGE);
	/* a full barrier between our store and the loads below, as the
	 * program's locked add is between its store and its gate load */
	__sync_synchronize();
	if (!b)
		return 0;
	for (uint32_t cpu = 0; cpu < fp->busy.entries; cpu++) {
		uint64_t enter = b[cpu].enter;

		/* a program on this CPU that entered before our store has left */
		while (b[cpu].exit < enter) {
			if (now_ns() - warned > 100000000ull) {
				warned = now_ns();
				LOG_WARN("waiting for the fast reply on CPU %u to finish (%llu ms)", cpu,
					 (unsigned long long)(warned - t0) / 1000000);
			}
			sched_yield();
		}
	}
	return now_ns() - t0;
}

void el_fp_arm_reply(struct el_fastpath *fp, uint64_t view, uint64_t last_op)
{
	volatile struct el_fr_state *s = fp->fr_state.mem;

	if (!s)
		return;
	s->view = view;
	s->last_op = last_op;
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

void el_fp_reply_progress(struct el_fastpath *fp, uint64_t last_op)
{
	volatile struct el_fr_state *s = fp->fr_state.mem;

	/* racing the program's own advances: a value that goes back only
	 * re-admits a Prepare the log already holds */
	if (s && last_op > s->last_op)
		s->last_op = last_op;
}

int el_fp_consume(struct el_fastpath *fp, el_fp_record_cb cb, void *ctx)
{
	if (!fp || !fp->rb)
		return 0;
	fp->cb = cb;
	fp->cb_ctx = ctx;
	return ring_buffer__consume(fp->rb);
}
