/* SPDX-License-Identifier: MIT
 *
 * loader.h - what the el-loader commands (one file each: attach.c, set.c,
 * detach.c, stats.c, show.c, ctrl.c, drain.c, peer_pass.c, impair.c) share:
 * the libbpf log and errors (log.c), option parsing (opts.c), pins and the
 * bpffs (pins.c), the peers file (peers.c), interfaces and our programs on
 * them (iface.c), and the fast-path objects (parts.c). main.c dispatches.
 */
#ifndef EL_LOADER_H
#define EL_LOADER_H

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <getopt.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "../../native/include/el_proto.h"
#include "../el_bpf.h"

/* our TC filters (el_tc_egress, el_tc_ingress): handle and priority */
#define TC_HANDLE 0xe1
#define TC_PRIO 1

/* ---- commands (main.c) ---------------------------------------------------- */

struct command {
	const char *name;
	int (*run)(int argc, char **argv); /* the exit code: 0 done, 1 failed, 2 bad usage */
	const char *usage;
};

extern const struct command ATTACH_CMD, SET_CMD, DETACH_CMD, STATS_CMD, SHOW_CMD, CTRL_CMD, DRAIN_CMD, PEER_PASS_CMD,
	IMPAIR_CMD;

/* ---- libbpf log capture, errors (log.c) ------------------------------------ */

int capture(enum libbpf_print_level level, const char *fmt, va_list ap);
void log_reset(void);
const char *log_text(void);
const char *log_tail(int lines);
const char *kernel_reason(void);
/* Prints the libbpf log tail and one actionable line; returns -1 for `return fail(...)`. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *explain_verifier(const char *log);
void json_string(FILE *out, const char *s);

/* ---- options (opts.c) ------------------------------------------------------ */

/* The options several commands take; each command's table says which. */
enum { O_PIN = 256, O_PEERS, O_INDEX, O_IFNAME, O_IFMAC, O_MODE, O_HOOK, O_JSON, O_BC, O_Q, O_R, O_VIEW, O_STATUS,
       O_LEASE, O_LAST, O_COMMIT, O_FRV, O_FRL, O_OFF, O_LOSS, O_DUP };

struct common {
	const char *pin_dir, *ifname, *ifmac;
	bool json;
};

extern const struct option PIN_JSON_OPTIONS[];

int parse_u64(const char *flag, const char *v, __u64 *out);
bool parse_mac(const char *s, __u8 mac[6]);
int common_opt(int c, struct common *o);
int only_common(int c, void *ctx);
int parse_cmd(int argc, char **argv, const struct option *table, const char *usage, int (*each)(int c, void *ctx),
	      void *ctx);
int need_pin_dir(const char *cmd, const struct common *o);

/* ---- environment checks, pins (pins.c) -------------------------------------- */

int check_root(void);
int root_and_bpffs(const char *dir);
int mkdir_p(const char *dir);
int unpin_all(const char *dir);
int open_pinned(const char *dir, const char *name);
int pin_object(struct bpf_object *obj, const char *dir, bool maps);

/* ---- peers file (peers.c) --------------------------------------------------- */

struct peers {
	__u32 n, f;
	struct el_peer p[EL_MAX_REPLICAS];
	bool seen[EL_MAX_REPLICAS];
};

int read_peers(const char *file, struct peers *pt);

/* ---- interfaces (iface.c) --------------------------------------------------- */

int find_ifindex(const char *cmd, const struct common *o, char name[IF_NAMESIZE], __u8 mac[6], bool must);
bool prog_name_by_id(__u32 id, char name[BPF_OBJ_NAME_LEN]);
int detach_ifindex(int ifindex, const char *ifname);
void xdp_hint(const char *ifname, const char *reason, char *out, size_t len);

/* ---- the objects (parts.c) -------------------------------------------------- */

extern const char *const FP_NAMES[];
void fp_list(__u32 bits, char *out, size_t len);

enum tail { TAIL_NONE, TAIL_XDP, TAIL_TC };

struct part {
	const char *object;   /* el_tc, ... */
	__u32 needed_by;      /* fast paths lost when it is rejected */
	enum tail tail;       /* prog array it is a tail-call target in */
	__u32 slot;
	void *(*open)(void);
	int (*load)(void *);
	void (*destroy)(void *);
	struct bpf_object *(*obj)(void *);
	int (*prog_fd)(void *, bool tc);
};

/* The objects after the dispatcher el_xdp, in load order; PARTS[] says what
 * each one carries. */
enum part_id { PART_TC, PART_QUORUM, PART_REPLY, PART_BROADCAST, N_PARTS };
extern const struct part PARTS[N_PARTS];

struct part_result {
	void *skel;
	bool ok;
	char verdict[1024];   /* the verifier's last lines */
	const char *meaning;
};

void load_part(const struct part *p, struct bpf_object *maps_owner, struct part_result *r);

/* ---- stats (stats.c), also for show ----------------------------------------- */

int read_stats(const char *dir, struct el_stat out[EL_PROG_MAX]);
void print_stats_json(const struct el_stat s[EL_PROG_MAX]);

#endif /* EL_LOADER_H */
