/* SPDX-License-Identifier: MIT
 *
 * lab_faults.c - the crash-hunt lab's planted faults (lab_faults.h). Built
 * only into build/lab/replica (make lab-faults).
 */
#define _GNU_SOURCE
#include "lab_faults.h"

#include <ctype.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wire.h"

int el_lab_fault = -1;
int el_lab_no_recovery;

/* FNV-1a 32, the same function as fnv1a() in src/core/plan.ts */
static uint32_t fnv1a(const char *s)
{
	uint32_t h = 0x811c9dc5u;
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x01000193u;
	}
	return h;
}

int el_lab_set_seed(const char *token)
{
	const char *colon = strchr(token, ':');
	if (!colon || colon == token || !colon[1])
		return -1;
	for (const char *p = token; p < colon; p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	el_lab_fault = (int)(fnv1a(token) % EL_LAB_FAULTS_N);
	return 0;
}

const struct el_msg *el_lab_winner(const struct el_msg *best)
{
	if (el_lab_fault != EL_LAB_DANGLING_POINTER || !best)
		return best;
	/* the course project kept a pointer to a loop-local copy; here the
	 * copy lives in a page that is unmapped before it is used, so the
	 * use faults every time instead of only sometimes */
	long page = sysconf(_SC_PAGESIZE);
	void *mem = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return best;
	memcpy(mem, best, sizeof(*best));
	munmap(mem, (size_t)page);
	return mem;
}

void el_lab_kernel_view(uint64_t *view, uint32_t *status)
{
	static int told;
	static uint64_t first_view;
	static uint32_t first_status;
	if (el_lab_fault != EL_LAB_STALE_VIEW)
		return;
	if (!told) {
		told = 1;
		first_view = *view;
		first_status = *status;
	}
	*view = first_view;
	*status = first_status;
}
