// SPDX-License-Identifier: MIT
/*
 * show.c - el-loader show --json: where our programs are attached, and the maps.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "loader.h"

static __u32 pinned_prog_id(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.id = 0;
	close(fd);
	return info.id;
}

static int read_one(const char *dir, const char *name, void *val)
{
	__u32 k = 0;
	int fd = open_pinned(dir, name), rc;

	if (fd < 0)
		return -1;
	rc = bpf_map_lookup_elem(fd, &k, val) ? fail("read %s/%s: %s", dir, name, strerror(errno)) : 0;
	close(fd);
	return rc;
}

static const char SHOW_USAGE[] = "el-loader show --pin-dir DIR --json";

/* The ids of the programs pinned in the pin folder (0: none), to tell ours
 * from another lab's on an interface. */
struct pinned_ids {
	__u32 xdp, tc, tci;
};

/* One entry of "attached" per program of ours on interface it. */
static void show_interface(const struct if_nameindex *it, const struct pinned_ids *ids, bool *first)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)it->if_index, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tco, .handle = TC_HANDLE, .priority = TC_PRIO);
	char name[BPF_OBJ_NAME_LEN];

	if (!bpf_xdp_query((int)it->if_index, 0, &q)) {
		__u32 xdp[2] = { q.drv_prog_id, q.skb_prog_id };

		for (int m = 0; m < 2; m++) {
			if (!xdp[m] || !prog_name_by_id(xdp[m], name) || strncmp(name, "el_", 3))
				continue;
			printf("%s{\"hook\":\"xdp\",\"mode\":\"%s\",\"ifname\":\"%s\",\"prog\":\"%s\",\"id\":%u,"
			       "\"current\":%s}",
			       *first ? "" : ",", m ? "generic" : "native", it->if_name, name, xdp[m],
			       xdp[m] == ids->xdp ? "true" : "false");
			*first = false;
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		__u32 cur = pass ? ids->tci : ids->tc;

		hook.attach_point = pass ? BPF_TC_INGRESS : BPF_TC_EGRESS;
		tco.prog_id = 0;
		tco.prog_fd = 0;
		tco.flags = 0;
		if (!bpf_tc_query(&hook, &tco) && prog_name_by_id(tco.prog_id, name) && !strncmp(name, "el_", 3)) {
			printf("%s{\"hook\":\"tc\",\"mode\":\"%s\",\"ifname\":\"%s\",\"prog\":\"%s\",\"id\":%u,"
			       "\"current\":%s}",
			       *first ? "" : ",", pass ? "ingress" : "egress", it->if_name, name, tco.prog_id,
			       tco.prog_id == cur ? "true" : "false");
			*first = false;
		}
	}
}

/* "ctrl", "config", "fr_state" and "stats", from the pinned maps. */
static int show_maps(const char *dir)
{
	struct el_stat s[EL_PROG_MAX];
	struct el_config cfg;
	struct el_ctrl ctl;
	struct el_fr_state fr;
	char fps[64], lfps[64];

	if (read_one(dir, EL_STR(EL_MAP_CTRL), &ctl) || read_one(dir, EL_STR(EL_MAP_CONFIG), &cfg) ||
	    read_one(dir, EL_STR(EL_MAP_FR_STATE), &fr) || read_stats(dir, s))
		return -1;
	fp_list(cfg.enabled, fps, sizeof(fps));
	fp_list(cfg.loaded, lfps, sizeof(lfps));
	printf(",\"ctrl\":{\"view\":%llu,\"status\":%u,\"lease_ns\":%llu,\"last_op\":%llu,\"commit\":%llu,\"my_idx\":%u,"
	       "\"n_replicas\":%u,\"f\":%u,\"gen\":%llu}",
	       (unsigned long long)EL_VS_VIEW(ctl.view_status), EL_VS_STATUS(ctl.view_status),
	       (unsigned long long)ctl.lease_ns, (unsigned long long)ctl.last_op, (unsigned long long)ctl.commit,
	       ctl.my_idx, ctl.n_replicas, ctl.f, (unsigned long long)ctl.gen);
	printf(",\"config\":{\"n_replicas\":%u,\"f\":%u,\"my_idx\":%u,\"enabled\":%u,\"fast_paths\":\"%s\","
	       "\"loaded\":%u,\"loaded_paths\":\"%s\",\"my_port\":%u}",
	       cfg.n_replicas, cfg.f, cfg.my_idx, cfg.enabled, fps, cfg.loaded, lfps, ntohs(cfg.my_port));
	printf(",\"fr_state\":{\"view\":%llu,\"last_op\":%llu}", (unsigned long long)fr.view,
	       (unsigned long long)fr.last_op);
	printf(",\"stats\":");
	print_stats_json(s);
	return 0;
}

static int cmd_show(int argc, char **argv)
{
	struct common o = { 0 };
	struct if_nameindex *ifs;
	struct pinned_ids ids;
	bool first = true;

	if (parse_cmd(argc, argv, PIN_JSON_OPTIONS, SHOW_USAGE, only_common, &o) || need_pin_dir("show", &o))
		return 2;
	if (!o.json)
		return fail("show: only --json output exists; use `stats` for a table"), 2;
	if (root_and_bpffs(o.pin_dir))
		return 1;
	ids.xdp = pinned_prog_id(o.pin_dir, "el_xdp_dispatch");
	ids.tc = pinned_prog_id(o.pin_dir, "el_tc_egress");
	ids.tci = pinned_prog_id(o.pin_dir, "el_tc_ingress");
	printf("{\"pinDir\":");
	json_string(stdout, o.pin_dir);
	printf(",\"pinned\":%s,\"attached\":[", ids.xdp ? "true" : "false");
	/* find where our pinned programs are attached in this namespace */
	ifs = if_nameindex();
	for (const struct if_nameindex *it = ifs; it && it->if_index; it++)
		show_interface(it, &ids, &first);
	if (ifs)
		if_freenameindex(ifs);
	printf("]");
	log_reset();
	if (ids.xdp && show_maps(o.pin_dir))
		return 1;
	printf("}\n");
	return 0;
}

const struct command SHOW_CMD = { "show", cmd_show, SHOW_USAGE };
