/* SPDX-License-Identifier: MIT
 *
 * lab_faults.h - the planted faults of the crash-hunt course lab
 * (labs/05-crash-hunt). Only the lab build has them: `make -C native
 * lab-faults` compiles build/lab/replica with -DEL_LAB_FAULTS; every other
 * build contains none of this code, and only `electrode-lab lab start 05`
 * runs the lab build.
 *
 * Which fault is planted is not given on the command line: the replica gets
 * `--lab-seed <seed>:<lab>` and derives it, as src/labs/crashhunt.ts does,
 * as FNV-1a 32 of that text modulo the number of faults. The order below is
 * the order of CRASH_HUNT_FAULTS there.
 */
#ifndef EL_LAB_FAULTS_H
#define EL_LAB_FAULTS_H

#include <stdint.h>

enum el_lab_fault {
	EL_LAB_PEER_TABLE = 0,   /* planted by the lab (peer table), not here    */
	EL_LAB_STALE_VIEW,       /* el_ctrl keeps the first view it was told     */
	EL_LAB_UNKNOWN_PORT,     /* planted by the lab (peer table), not here    */
	EL_LAB_SHARED_PINS,      /* planted by the lab (pin folders), not here   */
	EL_LAB_DANGLING_POINTER, /* the view change keeps a pointer to a copy
	                          * that is gone                                 */
	EL_LAB_FAULTS_N,
};

/* -1 until --lab-seed is given (then the lab build behaves like the normal one). */
extern int el_lab_fault;

/* --lab-no-recovery (bench --unsafe-no-recovery): start in view 0 normal
 * with empty state, skipping VR recovery, the old unsafe behaviour. */
extern int el_lab_no_recovery;

/* Parses `<seed>:<lab>` (decimal seed, lab name); returns -1 if malformed. */
int el_lab_set_seed(const char *token);

struct el_msg;
/* The DoViewChange whose log wins a view change, as the view change goes on
 * to use it: with EL_LAB_DANGLING_POINTER a pointer to a copy whose memory
 * was given back (dereferencing it faults at once). */
const struct el_msg *el_lab_winner(const struct el_msg *best);

/* The (view, status) the kernel is told: with EL_LAB_STALE_VIEW always the
 * first ones, as in the course project (written once at start). */
void el_lab_kernel_view(uint64_t *view, uint32_t *status);

#endif
