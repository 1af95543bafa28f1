/* SPDX-License-Identifier: MIT
 *
 * el_fastpath_rules.h - the decisions the eBPF fast paths take, as pure
 * functions over plain values. ONE definition, used by the programs in bpf/
 * (clang -target bpf) and by the replica's simulation in native/tests/, so
 * the simulation checks the rules the kernel actually runs.
 *
 * No libc, no loops, no helpers: every function must also pass the Linux
 * 5.8 verifier once inlined.
 */
#ifndef EL_FASTPATH_RULES_H
#define EL_FASTPATH_RULES_H

#include <linux/types.h>
#include "el_proto.h"

#ifndef EL_RULES_INLINE
#define EL_RULES_INLINE static inline __attribute__((always_inline))
#endif

/* ---- fast reply (follower) ------------------------------------------------ */

enum el_fr_verdict {
	EL_FR_ACK = 0,        /* record it in the ring, answer with a PrepareOK  */
	EL_FR_NOT_NORMAL,     /* gate closed: view change or recovering          */
	EL_FR_LEASE,          /* the replica did not renew its lease: maybe dead */
	EL_FR_NOT_ARMED,      /* el_fr_state belongs to another view            */
	EL_FR_OTHER_VIEW,     /* the Prepare is from another view                */
	EL_FR_NOT_FROM_LEADER,/* not from this view's leader, or we lead         */
	EL_FR_GAP,            /* does not start right after what we hold         */
	EL_FR_TOO_LARGE,      /* more than a ring record carries                 */
};

struct el_fr_input {
	__u64 view_status;    /* el_ctrl.view_status                            */
	__u64 lease_ns;       /* el_ctrl.lease_ns                               */
	__u64 now_ns;         /* bpf_ktime_get_ns()                              */
	__u64 fr_view, fr_last;  /* el_fr_state                                 */
	__u32 my_idx, n;      /* el_config                                      */
	__u64 p_view, p_opnum;   /* the Prepare                                  */
	__u32 p_sender, p_aux, p_len; /* p_len: UDP payload bytes (hdr + ops)   */
	__u32 max_len;        /* EL_FR_MAX_PAYLOAD                               */
};

/* The fast reply may acknowledge a Prepare only when user space and the ring
 * together hold every op before it in this view: then its PrepareOK says no
 * more than a PrepareOK from the replica would. */
EL_RULES_INLINE int el_fr_decide(const struct el_fr_input *in)
{
	__u64 view = EL_VS_VIEW(in->view_status);

	if (EL_VS_STATUS(in->view_status) != EL_STATUS_NORMAL)
		return EL_FR_NOT_NORMAL;
	if (in->now_ns >= in->lease_ns)
		return EL_FR_LEASE;
	if (in->fr_view != view)
		return EL_FR_NOT_ARMED;
	if (in->p_view != view)
		return EL_FR_OTHER_VIEW;
	if (in->n == 0 || in->p_sender != (__u32)(view % in->n) || in->p_sender == in->my_idx)
		return EL_FR_NOT_FROM_LEADER;
	if (in->p_aux == 0 || in->p_opnum < in->p_aux || in->p_opnum - in->p_aux != in->fr_last)
		return EL_FR_GAP;
	if (in->p_len > in->max_len)
		return EL_FR_TOO_LARGE;
	return EL_FR_ACK;
}

/* ---- quorum prune (leader) ---------------------------------------------- */

/* What a quorum slot counts: the PrepareOKs for ONE (view, opnum), the
 * last op of a Prepare this leader sent. */
struct el_qcount {
	__u64 view;
	__u64 opnum;
	__u32 count;   /* distinct followers that acknowledged (view, opnum)   */
	__u32 acked;   /* bitmap of follower indexes already counted            */
	__u32 done;    /* the quorum-completing PrepareOK went up               */
	__u32 pad;
};

enum el_q_verdict {
	EL_Q_COMPLETE = 0,    /* the f-th distinct ack: pass it up, marked      */
	EL_Q_COUNTED,         /* counted, quorum not reached yet: drop          */
	EL_Q_DUPLICATE,       /* this follower was counted already: drop        */
	EL_Q_AFTER,           /* quorum already went up: drop                   */
	EL_Q_NOT_ARMED,       /* no Prepare for (view, opnum) seen leaving: pass
	                       * up UNMARKED (user space counts one ack)        */
};

/* A PrepareOK (view, opnum) from follower `replica` in a leader's slot. */
EL_RULES_INLINE int el_q_count(struct el_qcount *s, __u64 view, __u64 opnum, __u32 replica, __u32 f)
{
	__u32 bit;

	if (s->view != view || s->opnum != opnum || replica >= 32)
		return EL_Q_NOT_ARMED;
	bit = 1u << replica;
	if (s->done)
		return EL_Q_AFTER;
	if (s->acked & bit)
		return EL_Q_DUPLICATE;
	s->acked |= bit;
	s->count++;
	if (s->count >= f) {
		s->done = 1;
		return EL_Q_COMPLETE;
	}
	return EL_Q_COUNTED;
}

/* A Prepare ending at opnum leaves the leader: count afresh for a new op, or
 * for a retransmission after the quorum went up (its marked PrepareOK may
 * have been lost on the way to the socket). Copies of one Prepare sent while
 * counting leave the slot alone. */
EL_RULES_INLINE void el_q_arm(struct el_qcount *s, __u64 view, __u64 opnum)
{
	if (s->view != view || s->opnum != opnum || s->done) {
		s->view = view;
		s->opnum = opnum;
		s->count = 0;
		s->acked = 0;
		s->done = 0;
	}
}

#endif /* EL_FASTPATH_RULES_H */
