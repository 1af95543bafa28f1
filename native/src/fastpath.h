/* SPDX-License-Identifier: MIT
 * fastpath.h - the replica's side of the eBPF fast paths: pinned maps
 * el_ctrl, el_config, el_fr_state and the el_fr_ring ring buffer. Isolated
 * here so the protocol code never touches libbpf directly. */
#ifndef EL_FASTPATH_H
#define EL_FASTPATH_H

#include <stddef.h>
#include <stdint.h>
#include "../include/el_proto.h"

struct el_fastpath;

/* Opens DIR/el_ctrl, DIR/el_config and (need_ring) DIR/el_fr_state +
 * DIR/el_fr_ring. Returns NULL with a one-line reason in err. */
struct el_fastpath *el_fp_open(const char *dir, int need_ring, char *err, size_t errlen);
void el_fp_close(struct el_fastpath *fp);

/* el_config.enabled, or -1 with err set. */
int el_fp_enabled(struct el_fastpath *fp, uint32_t *enabled, char *err, size_t errlen);
int el_fp_write_ctrl(struct el_fastpath *fp, const struct el_ctrl *c);
int el_fp_reset_fr(struct el_fastpath *fp, uint64_t view, uint64_t last_op);

/* Ring buffer: fd to put in epoll; consume calls cb per record payload
 * (the UDP payload after struct el_fr_record). */
typedef void (*el_fp_record_cb)(void *ctx, const void *data, size_t len);
int el_fp_ring_fd(struct el_fastpath *fp);
int el_fp_consume(struct el_fastpath *fp, el_fp_record_cb cb, void *ctx);

#endif
