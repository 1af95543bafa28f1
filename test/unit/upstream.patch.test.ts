/** src/upstream/patch.ts and diff.ts: the patch for a copy of the user's Electrode tree, and `patch -p1` applying it. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { unifiedDiff } from '../../src/upstream/diff.js';
import { thirdPartyDir } from '../helpers/thirdParty.js';
import { UPSTREAM_FILES, UpstreamLab, UpstreamPatchError, UpstreamSources, kernelPorts, loaderPrograms, upstreamPatch } from '../../src/upstream/patch.js';

const tmp = mkdtempSync(join(tmpdir(), 'el-unit-upstream-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes `files` into a fresh folder, applies `diff` with `patch -p1`, returns the folder. */
function applyPatch(files: Record<string, string>, diff: string): string {
  const dir = mkdtempSync(join(tmp, 'tree-'));
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  execFileSync('patch', ['-p1', '--quiet', '--no-backup-if-mismatch'], { cwd: dir, input: diff });
  return dir;
}

function lab(n: number, port = 12345, extra: Partial<UpstreamLab> = {}): UpstreamLab {
  return {
    n,
    f: (n - 1) / 2,
    replicas: Array.from({ length: n }, (_, i) => ({ index: i, ip: `10.77.0.${10 + i}`, mac: `02:4c:aa:bb:00:${i.toString(16).padStart(2, '0')}`, port, ifname: 'eth0' })),
    ...extra,
  };
}

function errorOf(fn: () => unknown): UpstreamPatchError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UpstreamPatchError) return e;
    throw e;
  }
  throw new Error('expected an UpstreamPatchError');
}

describe('unifiedDiff', () => {
  const cases: [string, string, string][] = [
    ['change in the middle', 'a\nb\nc\nd\ne\nf\ng\nh\ni\n', 'a\nb\nc\nd\nE\nf\ng\nh\ni\n'],
    ['insert at the top, delete at the end', 'one\ntwo\nthree\n', 'zero\none\ntwo\n'],
    ['last line without a newline, changed', 'x\ny\nz', 'x\ny\nZ\n'],
    ['newline added at the end only', 'x\ny', 'x\ny\n'],
    ['two hunks far apart', Array.from({ length: 40 }, (_, i) => `l${i}`).join('\n') + '\n', Array.from({ length: 40 }, (_, i) => (i === 3 || i === 35 ? `L${i}` : `l${i}`)).join('\n') + '\n'],
    ['from empty', '', 'new\nfile\n'],
    ['to empty', 'old\n', ''],
  ];
  it.each(cases)('%s: patch -p1 turns the old text into the new one', (_name, a, b) => {
    const diff = unifiedDiff('d/f.txt', a, b);
    const dir = applyPatch({ 'd/f.txt': a }, diff);
    expect(readFileSync(join(dir, 'd/f.txt'), 'utf8')).toBe(b);
  });

  it('writes GNU-style hunks: headers, ranges, context and the no-newline marker', () => {
    expect(unifiedDiff('f', 'a\nb\nc', 'a\nB\nc')).toBe('--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n\\ No newline at end of file\n');
    expect(unifiedDiff('f', '1\n2\n3\n4\n5\n6\n7\n8\n', '1\n2\n3\n4\n5\n6\n7\n8\n9\n')).toBe('--- a/f\n+++ b/f\n@@ -6,3 +6,4 @@\n 6\n 7\n 8\n+9\n');
  });

  it('is empty for equal texts', () => {
    expect(unifiedDiff('f', 'same\n', 'same\n')).toBe('');
  });
});

// Small hand-written stand-ins with the same anchors as upstream's files (not upstream's code).
const MINI: UpstreamSources = {
  [UPSTREAM_FILES.config]: 'f 1\nreplica host-a:12345\nreplica host-b:12345\nreplica host-c:12345',
  [UPSTREAM_FILES.common]: '#define CLUSTER_SIZE 3 // edit me\n#define FAST_REPLICA_MAX 100\n',
  [UPSTREAM_FILES.user]: [
    '#include <sys/socket.h>',
    'static struct x progs[] = {',
    '\t{"mainProg", BPF_PROG_TYPE_XDP, 0, -1, NULL},',
    '\t{"tcProg", BPF_PROG_TYPE_SCHED_CLS, 1, -1, NULL},',
    '};',
    'struct bpf_object_load_attr load_attr;',
    '#define BPF_SYSFS_ROOT "/sys/fs/bpf"',
    'void load() {',
    '\tprogs[i].prog = bpf_object__find_program_by_title(obj, progs[i].name);',
    '\tload_attr.obj = obj;',
    '\tload_attr.log_level = 1;',
    '\terr = bpf_object__load_xattr(&load_attr);',
    '\tif (bpf_program__pin_instance(progs[i].prog, filename, 0)) bpf_program__unpin_instance(progs[i].prog, filename, 0);',
    '}',
    'void cfg() {',
    '\tconst char *eths[3] = {"aa:aa:aa:aa:aa:01", "aa:aa:aa:aa:aa:02", ""};',
    '\tfp = fopen("../config.txt", "r");',
    '\tsscanf(eths[i], "%x:%x:%x:%x:%x:%x", conf.eth, conf.eth + 1, conf.eth + 2, conf.eth + 3, conf.eth + 4, conf.eth + 5);',
    '\tassert(bpf_obj_pin(a, "/sys/fs/bpf/paxos_prepare_buffer") == 0);',
    '\tassert(bpf_obj_pin(b, "/sys/fs/bpf/paxos_request_buffer") == 0);',
    '\tassert(bpf_obj_pin(c, "/sys/fs/bpf/paxos_ctr_state") == 0);',
    '\tsystem("tc filter add dev eth0 egress bpf object-pinned /sys/fs/bpf/FastBroadCast");',
    '\tbpf_set_link_xdp_fd(ifx[i], fd, flags);',
    '\tbpf_set_link_xdp_fd(ifx[i], -1, flags);',
    '}',
    '',
  ].join('\n'),
  [UPSTREAM_FILES.kern]: [
    '#include <linux/bpf.h>',
    '#include "linux/tools/lib/bpf/bpf_helpers.h"',
    'struct bpf_map_def SEC("maps") m_cfg = {',
    '\t.type = BPF_MAP_TYPE_ARRAY,',
    '\t.key_size = sizeof(__u32),',
    '\t.value_size = sizeof(struct paxos_configure),',
    '\t.max_entries = FAST_REPLICA_MAX,',
    '};',
    'SEC("mainProg")',
    'int mainProg_main(struct xdp_md *ctx) {',
    '\tif (udp->dest != htons(12345)) return XDP_PASS; // bound to 12345',
    '\treturn XDP_PASS;',
    '}',
    'SEC("tcProg")',
    'int tcProg_main(struct __sk_buff *skb) {',
    '\tif (udp->source != htons(12345)) return TC_ACT_OK;',
    '\treturn TC_ACT_OK;',
    '}',
    'char _license[] SEC("license") = "GPL";',
    '',
  ].join('\n'),
  [UPSTREAM_FILES.replica]: 'fd = bpf_obj_get("/sys/fs/bpf/paxos_prepare_buffer");\nfd = bpf_obj_get("/sys/fs/bpf/paxos_ctr_state");\nfd = bpf_obj_get("/sys/fs/bpf/paxos_request_buffer");\n',
  [UPSTREAM_FILES.makefile]: 'CFLAGS := -DNASSERT -O2 -g -Wall\n',
};

describe('upstreamPatch on small hand-written inputs', () => {
  it('writes config.txt, CLUSTER_SIZE, the MAC table, the checked config path and ONE port in both programs', () => {
    const r = upstreamPatch(MINI, lab(5, 7000, { configPath: '/lab/tree/config.txt' }));
    const out = r.files;
    expect(out[UPSTREAM_FILES.config]).toBe('f 2\nreplica 10.77.0.10:7000\nreplica 10.77.0.11:7000\nreplica 10.77.0.12:7000\nreplica 10.77.0.13:7000\nreplica 10.77.0.14:7000\n');
    expect(out[UPSTREAM_FILES.common]).toContain('#define CLUSTER_SIZE 5 // edit me');
    const user = out[UPSTREAM_FILES.user] as string;
    // sized by a literal 3 that cannot hold 5 entries: the size grows with the table
    expect(user).toMatch(/const char \*eths\[5\] = \{/);
    expect(user.match(/"02:4c:aa:bb:00:0\d", \/\* replica \d/g)).toHaveLength(5);
    expect(user).not.toContain('aa:aa:aa:aa:aa:01');
    expect(user).toContain('fopen("/lab/tree/config.txt", "r");\n\tif (fp == NULL) {');
    expect(user).toContain('"%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", (unsigned char *)conf.eth, (unsigned char *)conf.eth + 1,');
    const kern = out[UPSTREAM_FILES.kern] as string;
    expect(kernelPorts(kern)).toEqual([7000, 7000]);
    expect(kern).toContain('// bound to 7000');
    expect(r.port).toBe(7000);
    expect(r.edits.map((e) => e.what)).toContain('port 12345 -> 7000 in both programs');
  });

  it('makes the tree build with libbpf 1.x: BTF maps, known sections, 1.x loader calls', () => {
    const { files } = upstreamPatch(MINI, lab(3));
    const kern = files[UPSTREAM_FILES.kern] as string;
    expect(kern).not.toContain('SEC("maps")');
    expect(kern).toContain('struct {\n\t__uint(type, BPF_MAP_TYPE_ARRAY);\n\t__uint(key_size, sizeof(__u32));\n\t__uint(value_size, sizeof(struct paxos_configure));\n\t__uint(max_entries, FAST_REPLICA_MAX);\n} m_cfg SEC(".maps");');
    expect(kern).toContain('SEC("xdp")\nint mainProg_main(struct xdp_md *ctx)');
    expect(kern).toContain('SEC("tc")\nint tcProg_main(struct __sk_buff *skb)');
    expect(kern).toContain('SEC("license")');
    expect(kern).toContain('#include <bpf/bpf_helpers.h>');
    expect(kern).not.toContain('linux/tools/lib/bpf');
    const user = files[UPSTREAM_FILES.user] as string;
    for (const gone of ['bpf_object_load_attr', 'load_attr.', 'load_xattr', 'find_program_by_title', 'pin_instance', 'bpf_set_link_xdp_fd']) expect(user).not.toContain(gone);
    expect(user).toContain('err = bpf_object__load(obj);');
    expect(user).toContain('snprintf(fn_name, sizeof(fn_name), "%s_main", progs[i].name);\n\t\tprogs[i].prog = bpf_object__find_program_by_name(obj, fn_name);');
    expect(user).toContain('bpf_program__pin(progs[i].prog, filename)) bpf_program__unpin(progs[i].prog, filename);');
    expect(user).toContain('bpf_xdp_attach(ifx[i], fd, flags, NULL);');
    expect(user).toContain('bpf_xdp_detach(ifx[i], flags, NULL);');
    expect(user).toContain('#include <sys/socket.h>\n#include <net/if.h>\n');
  });

  it('libbpf1: false keeps the 0.x calls and the legacy maps (for a prepared kernel tree)', () => {
    const { files } = upstreamPatch(MINI, lab(3), { libbpf1: false });
    expect(files[UPSTREAM_FILES.kern]).toContain('struct bpf_map_def SEC("maps") m_cfg');
    expect(files[UPSTREAM_FILES.user]).toContain('bpf_object__load_xattr(&load_attr)');
  });

  it('moves every pin of the loader and the replica when a pin folder is given', () => {
    const { files, changed } = upstreamPatch(MINI, lab(3, 12345, { pinDir: '/sys/fs/bpf/lab/' }));
    const user = files[UPSTREAM_FILES.user] as string;
    expect(user).toContain('#define BPF_SYSFS_ROOT "/sys/fs/bpf/lab"');
    expect(user).toContain('object-pinned /sys/fs/bpf/lab/FastBroadCast');
    expect(user.match(/"\/sys\/fs\/bpf\/lab\/paxos_\w+"/g)).toHaveLength(3);
    expect(files[UPSTREAM_FILES.replica]).toBe(
      'fd = bpf_obj_get("/sys/fs/bpf/lab/paxos_prepare_buffer");\nfd = bpf_obj_get("/sys/fs/bpf/lab/paxos_ctr_state");\nfd = bpf_obj_get("/sys/fs/bpf/lab/paxos_request_buffer");\n',
    );
    expect(changed).toContain(UPSTREAM_FILES.replica);
    // the default folder leaves the replica alone
    expect(upstreamPatch(MINI, lab(3)).changed).not.toContain(UPSTREAM_FILES.replica);
  });

  it('asserts: drops -DNASSERT from the top Makefile', () => {
    expect(upstreamPatch(MINI, lab(3), { asserts: true }).files[UPSTREAM_FILES.makefile]).toBe('CFLAGS := -O2 -g -Wall\n');
  });

  it('the diff applied with patch -p1 to a pristine copy gives the same texts', () => {
    const r = upstreamPatch(MINI, lab(5, 7000, { pinDir: '/run/pins', configPath: '/x/config.txt' }), { asserts: true });
    const dir = applyPatch(MINI as Record<string, string>, r.diff);
    expect(r.changed).toHaveLength(6);
    for (const f of r.changed) expect(readFileSync(join(dir, f), 'utf8'), f).toBe(r.files[f]);
  });

  it('is idempotent: patching a tree it patched before changes nothing more (a new lab only changes values)', () => {
    const l = lab(5, 7000, { configPath: '/x/config.txt', pinDir: '/run/pins' });
    const once = upstreamPatch(MINI, l, { asserts: true });
    const twice = upstreamPatch(once.files, l, { asserts: true });
    expect(twice.changed).toEqual([]);
    expect(twice.diff).toBe('');
    const other = upstreamPatch(once.files, lab(3, 7000, { configPath: '/y/config.txt', pinDir: '/run/pins' }));
    const user = other.files[UPSTREAM_FILES.user] as string;
    expect(user.match(/if \(fp == NULL\)/g)).toHaveLength(1);
    expect(user).toContain('fopen("/y/config.txt", "r")');
    expect(user).toContain('"/y/config.txt", strerror(errno)');
    expect(user).not.toContain('/x/config.txt');
    expect((other.files[UPSTREAM_FILES.kern] as string).match(/#include <bpf\/bpf_helpers.h>/g)).toHaveLength(1);
  });

  it('a missing anchor fails loudly, naming the file and the anchor, and all of them are reported at once', () => {
    const broken = {
      ...MINI,
      [UPSTREAM_FILES.kern]: (MINI[UPSTREAM_FILES.kern] as string).replace('htons(12345)) return XDP_PASS', 'htons(PORT)) return XDP_PASS'),
      [UPSTREAM_FILES.common]: '#define CLUSTER_SIZE_FROM_ENV\n',
    };
    const e = errorOf(() => upstreamPatch(broken, lab(3)));
    expect(e.missing).toEqual(
      expect.arrayContaining([
        { file: 'xdp-handler/fast_kern.c', anchor: '`htons(<port>)` twice (XDP destination check, TC source check)' },
        { file: 'xdp-handler/fast_common.h', anchor: '`#define CLUSTER_SIZE <n>`' },
      ]),
    );
    expect(e.message).toContain('UPSTREAM_ANCHOR_MISSING xdp-handler/fast_kern.c: expected `htons(<port>)` twice');
    expect(e.message).toContain('(wanted 2, found 1)');
    expect(e.diagnostics.every((d) => d.hint)).toBe(true);
  });

  it('a MAC table or a loader program it cannot find is an error, not a silent non-edit', () => {
    const noTable = { ...MINI, [UPSTREAM_FILES.user]: (MINI[UPSTREAM_FILES.user] as string).replace(/const char \*eths.*\n/, 'read_macs_from_file();\n') };
    expect(errorOf(() => upstreamPatch(noTable, lab(3))).missing).toContainEqual({ file: 'xdp-handler/fast_user.c', anchor: '`const char *eths[...] = {...};`' });
    const oddSize = { ...MINI, [UPSTREAM_FILES.user]: (MINI[UPSTREAM_FILES.user] as string).replace('eths[3]', 'eths[MY_MAX]') };
    expect(errorOf(() => upstreamPatch(oddSize, lab(3))).message).toContain('sized by `MY_MAX`');
    const renamed = { ...MINI, [UPSTREAM_FILES.kern]: (MINI[UPSTREAM_FILES.kern] as string).replace('int tcProg_main', 'int tc_prog') };
    expect(errorOf(() => upstreamPatch(renamed, lab(3))).missing).toContainEqual({ file: 'xdp-handler/fast_kern.c', anchor: '`SEC("tcProg") int tcProg_main(`' });
  });

  it('lab values upstream cannot take: different ports, n != 2f+1, host names, missing files', () => {
    const l = lab(3);
    l.replicas[1] = { ...(l.replicas[1] as UpstreamLab['replicas'][number]), port: 12346 };
    const ports = errorOf(() => upstreamPatch(MINI, l));
    expect(ports.diagnostics.map((d) => d.code)).toEqual(['UPSTREAM_PORTS_DIFFER']);
    expect(ports.message).toContain('give every upstream replica the same port');
    expect(errorOf(() => upstreamPatch(MINI, { ...lab(3), n: 4, f: 1 })).diagnostics.map((d) => d.code)).toContain('UPSTREAM_LAB_SIZE');
    const named = lab(3);
    named.replicas[0] = { ...(named.replicas[0] as UpstreamLab['replicas'][number]), ip: 'replica1' };
    expect(errorOf(() => upstreamPatch(MINI, named)).message).toContain('UPSTREAM_LAB_IP replica0.ip=replica1');
    const { [UPSTREAM_FILES.replica]: _r, ...noReplica } = MINI;
    expect(errorOf(() => upstreamPatch(noReplica, lab(3, 12345, { pinDir: '/p' }))).message).toContain('UPSTREAM_FILE_MISSING vr/replica.cc');
    expect(errorOf(() => upstreamPatch(MINI, lab(3, 12345, { configPath: 'rel"ative' }))).diagnostics.map((d) => d.code)).toEqual(['UPSTREAM_LAB_PATH']);
  });
});

const snapDir = thirdPartyDir('electrode-upstream');

describe.skipIf(!existsSync(snapDir))(`upstreamPatch on the real upstream files (skipped when ${snapDir} is absent)`, () => {
  const read = (): UpstreamSources => Object.fromEntries(Object.values(UPSTREAM_FILES).map((f) => [f, readFileSync(join(snapDir, f), 'utf8')]));

  it('upstream itself: one port 12345 in both programs, CLUSTER_SIZE 3, seven loader programs', () => {
    const src = read();
    expect(kernelPorts(src[UPSTREAM_FILES.kern] as string)).toEqual([12345, 12345]);
    expect(src[UPSTREAM_FILES.common]).toMatch(/#define CLUSTER_SIZE 3\b/);
    expect(loaderPrograms(src[UPSTREAM_FILES.user] as string)).toEqual(['fastPaxos', 'HandlePrepare', 'HandlePrepareOK', 'HandleRequest', 'WriteBuffer', 'PrepareFastReply', 'FastBroadCast']);
  });

  it.each([3, 5, 7])('%i replicas: every anchor is found, the values come from the lab, and patch -p1 reproduces the texts', (n) => {
    const src = read();
    const r = upstreamPatch(src, lab(n, 12345, { configPath: '/lab/tree/config.txt', pinDir: '/sys/fs/bpf/el' }), { asserts: true });
    const user = r.files[UPSTREAM_FILES.user] as string;
    expect(user.match(/"02:4c:aa:bb:00:0\d", \/\* replica/g)).toHaveLength(n);
    expect(user).toContain('const char *eths[FAST_REPLICA_MAX] = {');
    expect(user).not.toContain('9c:dc:71');
    expect(r.files[UPSTREAM_FILES.common]).toMatch(new RegExp(`#define CLUSTER_SIZE ${n} `));
    expect(r.files[UPSTREAM_FILES.config]?.trimEnd().split('\n')).toHaveLength(n + 1);
    expect(r.files[UPSTREAM_FILES.kern]).not.toContain('bpf_map_def');
    expect((r.files[UPSTREAM_FILES.kern] as string).match(/SEC\("xdp"\)/g)).toHaveLength(6);
    expect((r.files[UPSTREAM_FILES.kern] as string).match(/SEC\("tc"\)/g)).toHaveLength(1);
    expect(r.files[UPSTREAM_FILES.replica]).toContain('bpf_obj_get("/sys/fs/bpf/el/paxos_ctr_state")');
    expect(r.files[UPSTREAM_FILES.makefile]).toMatch(/^CFLAGS := -O2 -g -Wall/m);
    const dir = applyPatch(src as Record<string, string>, r.diff);
    for (const f of Object.values(UPSTREAM_FILES)) expect(readFileSync(join(dir, f), 'utf8'), f).toBe(r.files[f]);
  });
});
