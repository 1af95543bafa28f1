// SPDX-License-Identifier: MIT
/*
 * pins.c - environment checks (root, bpffs) and the node's pins.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "loader.h"

int check_root(void)
{
	if (geteuid() != 0)
		return fail("must run as root: loading eBPF and attaching XDP/TC needs CAP_SYS_ADMIN and CAP_NET_ADMIN "
			    "(use sudo)");
	return 0;
}

/* The pin dir must live on a bpffs: check its nearest existing ancestor. */
static int check_bpffs(const char *dir)
{
	char path[PATH_MAX];
	struct statfs st;

	snprintf(path, sizeof(path), "%s", dir);
	for (;;) {
		if (statfs(path, &st) == 0)
			break;
		char *slash = strrchr(path, '/');

		if (!slash || slash == path) {
			snprintf(path, sizeof(path), "/");
			if (statfs(path, &st))
				return fail("statfs /: %s", strerror(errno));
			break;
		}
		*slash = 0;
	}
	if ((unsigned long)st.f_type != BPF_FS_MAGIC)
		return fail("%s is not on a bpf filesystem (%s is not bpffs): mount it with `mount -t bpf bpf /sys/fs/bpf`; "
			    "inside `ip netns exec` /sys is remounted, enter the namespace with `nsenter --net=/run/netns/<ns>` "
			    "instead",
			    dir, path);
	return 0;
}

int root_and_bpffs(const char *dir)
{
	return check_root() || check_bpffs(dir) ? -1 : 0;
}

int mkdir_p(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0700) && errno != EEXIST)
			return fail("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		return fail("mkdir %s: %s", path, strerror(errno));
	return 0;
}

/* Removes our pins (every entry named el_*: maps and programs) and the pin
 * dir, then the lab dir if that was the last node; also what a crashed run
 * left. Pins of other tools stay, with a warning. */
int unpin_all(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(dir);
	int err = 0;

	if (!d)
		return errno == ENOENT ? 0 : fail("open %s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "el_", 3))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) && errno != ENOENT)
			err = fail("unpin %s: %s", path, strerror(errno));
	}
	closedir(d);
	snprintf(path, sizeof(path), "%s", dir);
	for (int i = 0; i < 2; i++) {
		char *slash;

		if (rmdir(path) && errno != ENOENT) {
			if (i == 0 && errno == ENOTEMPTY)
				fprintf(stderr, "el-loader: warning: %s holds pins that are not ours; left it in place\n", path);
			break;
		}
		slash = strrchr(path, '/');
		if (!slash || slash == path)
			break;
		*slash = 0;
	}
	return err;
}

/* A pinned map of this node, by the name the objects give it. */
int open_pinned(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return fail("%s: %s; attach the fast paths first with `electrode-lab attach`", path, strerror(errno));
	return fd;
}

int pin_object(struct bpf_object *obj, const char *dir, bool maps)
{
	char path[PATH_MAX];
	struct bpf_program *prog;
	struct bpf_map *map;
	int err;

	if (maps) {
		bpf_object__for_each_map(map, obj) {
			snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
			if ((err = bpf_map__pin(map, path)))
				return fail("pin %s: %s", path, strerror(-err));
		}
	}
	bpf_object__for_each_program(prog, obj) {
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_program__name(prog));
		if ((err = bpf_program__pin(prog, path)))
			return fail("pin %s: %s", path, strerror(-err));
	}
	return 0;
}
