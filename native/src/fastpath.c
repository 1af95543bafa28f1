/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "fastpath.h"
#include "util.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct el_fastpath {
	int ctrl_fd, config_fd, fr_state_fd, ring_fd;
	struct ring_buffer *rb;
	el_fp_record_cb cb;
	void *cb_ctx;
	uint32_t gen;
};

static int open_pin(const char *dir, const char *name, size_t value_size, char *err, size_t errlen)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = bpf_obj_get(path);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen,
			 "cannot open pinned map %s: %s; attach the fast paths first with "
			 "`electrode-lab attach` (or el-loader attach --pin-dir %s)",
			 path, strerror(e), dir);
		return -1;
	}
	if (value_size) {
		struct bpf_map_info info;
		uint32_t len = sizeof(info);
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.value_size != value_size) {
			snprintf(err, errlen,
				 "pinned map %s has value size %u, this replica expects %zu: the eBPF "
				 "programs and the replica were built from different el_proto.h; rebuild "
				 "both (npm run build) and re-run `electrode-lab attach`",
				 path, info.value_size, value_size);
			close(fd);
			return -1;
		}
	}
	return fd;
}

struct el_fastpath *el_fp_open(const char *dir, int need_ring, char *err, size_t errlen)
{
	struct el_fastpath *fp = el_xcalloc(1, sizeof(*fp));
	fp->ctrl_fd = fp->config_fd = fp->fr_state_fd = fp->ring_fd = -1;
	fp->ctrl_fd = open_pin(dir, "el_ctrl", sizeof(struct el_ctrl), err, errlen);
	if (fp->ctrl_fd < 0)
		goto fail;
	fp->config_fd = open_pin(dir, "el_config", sizeof(struct el_config), err, errlen);
	if (fp->config_fd < 0)
		goto fail;
	/* el_fr_state is reset on every view change even without --fast-reply, so
	 * a kernel fast reply switched on later never starts from stale progress */
	char path[512];
	snprintf(path, sizeof(path), "%s/el_fr_state", dir);
	if (need_ring || access(path, F_OK) == 0) {
		fp->fr_state_fd = open_pin(dir, "el_fr_state", sizeof(struct el_fr_state), err, errlen);
		if (fp->fr_state_fd < 0)
			goto fail;
	}
	if (need_ring) {
		fp->ring_fd = open_pin(dir, "el_fr_ring", 0, err, errlen);
		if (fp->ring_fd < 0)
			goto fail;
	}
	return fp;
fail:
	el_fp_close(fp);
	return NULL;
}

void el_fp_close(struct el_fastpath *fp)
{
	if (!fp)
		return;
	if (fp->rb)
		ring_buffer__free(fp->rb);
	int fds[] = { fp->ctrl_fd, fp->config_fd, fp->fr_state_fd, fp->ring_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fp);
}

int el_fp_enabled(struct el_fastpath *fp, uint32_t *enabled, char *err, size_t errlen)
{
	uint32_t key = 0;
	struct el_config cfg;
	if (bpf_map_lookup_elem(fp->config_fd, &key, &cfg)) {
		snprintf(err, errlen, "cannot read el_config: %s", strerror(errno));
		return -1;
	}
	*enabled = cfg.enabled;
	return 0;
}

int el_fp_write_ctrl(struct el_fastpath *fp, const struct el_ctrl *c)
{
	uint32_t key = 0;
	struct el_ctrl v = *c;
	v.gen = ++fp->gen;
	if (bpf_map_update_elem(fp->ctrl_fd, &key, &v, BPF_ANY)) {
		LOG_WARN("cannot update el_ctrl: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int el_fp_reset_fr(struct el_fastpath *fp, uint64_t view, uint64_t last_op)
{
	if (fp->fr_state_fd < 0)
		return 0;
	uint32_t key = 0;
	struct el_fr_state s = { .view = view, .last_op = last_op };
	if (bpf_map_update_elem(fp->fr_state_fd, &key, &s, BPF_ANY)) {
		LOG_WARN("cannot update el_fr_state: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct el_fastpath *fp = ctx;
	if (size < sizeof(struct el_fr_record))
		return 0;
	struct el_fr_record rec;
	memcpy(&rec, data, sizeof(rec));
	if (rec.len > size - sizeof(rec))
		return 0; /* never trust the length blindly */
	fp->cb(fp->cb_ctx, (const uint8_t *)data + sizeof(rec), rec.len);
	return 0;
}

int el_fp_ring_fd(struct el_fastpath *fp)
{
	if (fp->ring_fd < 0)
		return -1;
	if (!fp->rb) {
		fp->rb = ring_buffer__new(fp->ring_fd, on_record, fp, NULL);
		if (!fp->rb)
			return -1;
	}
	return ring_buffer__epoll_fd(fp->rb);
}

int el_fp_consume(struct el_fastpath *fp, el_fp_record_cb cb, void *ctx)
{
	if (!fp->rb)
		return 0;
	fp->cb = cb;
	fp->cb_ctx = ctx;
	return ring_buffer__consume(fp->rb);
}
