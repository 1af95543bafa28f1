// SPDX-License-Identifier: MIT
/*
 * parts.c - the fast-path objects (el_tc, el_quorum, el_reply, el_broadcast): one
 * table drives their skeletons; each is loaded on its own.
 */
#include <errno.h>
#include <string.h>

#include "loader.h"
#include "el_tc.skel.h"
#include "el_quorum.skel.h"
#include "el_reply.skel.h"
#include "el_broadcast.skel.h"

const char *const FP_NAMES[] = { "broadcast", "quorum", "reply" };
static const __u32 FP_BITS[] = { EL_FP_BROADCAST, EL_FP_QUORUM, EL_FP_REPLY };
#define N_FP 3

void fp_list(__u32 bits, char *out, size_t len)
{
	size_t o = 0;

	out[0] = 0;
	for (int i = 0; i < N_FP; i++)
		if (bits & FP_BITS[i])
			o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "", FP_NAMES[i]);
	if (!o)
		snprintf(out, len, "none");
}

/* The generated skeletons differ only in type: these adapters let one table
 * drive them. */
#define SKEL_OPS(x)                                                                              \
	static void *x##_open_(void) { return x##__open(); }                                     \
	static int x##_load_(void *s) { return x##__load(s); }                                   \
	static void x##_destroy_(void *s) { x##__destroy(s); }                                   \
	static struct bpf_object *x##_obj_(void *s) { return ((struct x *)s)->obj; }
SKEL_OPS(el_tc)
SKEL_OPS(el_quorum)
SKEL_OPS(el_reply)
SKEL_OPS(el_broadcast)

/* prog_fd(skel, tc): the program for the XDP hook, or (tc) its TC ingress
 * twin for veth; el_tc's "twin" is the TC ingress dispatcher. */
static int el_tc_fd_(void *s, bool tc)
{
	return bpf_program__fd(tc ? ((struct el_tc *)s)->progs.el_tc_ingress : ((struct el_tc *)s)->progs.el_tc_egress);
}
static int el_quorum_fd_(void *s, bool tc)
{
	return bpf_program__fd(tc ? ((struct el_quorum *)s)->progs.el_tci_quorum : ((struct el_quorum *)s)->progs.el_xdp_quorum);
}
static int el_reply_fd_(void *s, bool tc)
{
	return bpf_program__fd(tc ? ((struct el_reply *)s)->progs.el_tci_reply : ((struct el_reply *)s)->progs.el_xdp_reply);
}
static int el_broadcast_fd_(void *s, bool tc)
{
	(void)tc;
	return bpf_program__fd(((struct el_broadcast *)s)->progs.el_tc_broadcast);
}

#define PART(x, needs, t, k) { #x, needs, t, k, x##_open_, x##_load_, x##_destroy_, x##_obj_, x##_fd_ }
const struct part PARTS[N_PARTS] = {
	/* the egress dispatcher arms quorum slots and hands marked frames to the fan-out */
	[PART_TC] = PART(el_tc, EL_FP_BROADCAST | EL_FP_QUORUM, TAIL_NONE, 0),
	[PART_QUORUM] = PART(el_quorum, EL_FP_QUORUM, TAIL_XDP, EL_PROG_QUORUM),
	[PART_REPLY] = PART(el_reply, EL_FP_REPLY, TAIL_XDP, EL_PROG_REPLY),
	[PART_BROADCAST] = PART(el_broadcast, EL_FP_BROADCAST, TAIL_TC, EL_PROG_BROADCAST),
};

/* Opens part p, gives it the dispatcher's maps and loads it. On a refusal the
 * verifier's last lines and their meaning go into r and the part is left out. */
void load_part(const struct part *p, struct bpf_object *maps_owner, struct part_result *r)
{
	const char *missing_map = NULL;
	struct bpf_map *m;

	memset(r, 0, sizeof(*r));
	log_reset();
	r->skel = p->open();
	if (!r->skel) {
		snprintf(r->verdict, sizeof(r->verdict), "cannot open the object: %s", strerror(errno));
		r->meaning = "rebuild with `make -C bpf`";
		return;
	}
	bpf_object__for_each_map(m, p->obj(r->skel)) {
		struct bpf_map *own = bpf_object__find_map_by_name(maps_owner, bpf_map__name(m));
		int err;

		if (own && bpf_map__fd(own) < 0) {
			/* not created by this kernel (the ring buffer before 5.8) */
			bpf_map__set_autocreate(m, false);
			missing_map = bpf_map__name(m);
			continue;
		}
		err = own ? bpf_map__reuse_fd(m, bpf_map__fd(own)) : -ENOENT;
		if (err) {
			snprintf(r->verdict, sizeof(r->verdict), "map %s: %s", bpf_map__name(m), strerror(-err));
			r->meaning = "the objects were built from different headers: rebuild with `make -C bpf`";
			goto refused;
		}
	}
	if (p->load(r->skel)) {
		snprintf(r->verdict, sizeof(r->verdict), "%s", log_tail(6));
		r->meaning = missing_map && strstr(log_text(), missing_map) ? "this kernel has no BPF ring buffer (Linux 5.8+)"
									  : explain_verifier(log_text());
		goto refused;
	}
	r->ok = true;
	return;
refused:
	p->destroy(r->skel);
	r->skel = NULL;
}
