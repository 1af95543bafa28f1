/**
 * A patched copy of upstream's xdp-handler/ builds without a kernel tree,
 * passes THIS kernel's verifier, and its loader attaches in a real namespace
 * (tier 2). Needs root, clang, gcc, bpftool and the upstream snapshot.
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_FAST_PATHS } from '../../src/lab/bpf.js';
import { kernBuildArgv, loaderArgv, loaderBuildArgv } from '../../src/upstream/commands.js';
import { UPSTREAM_FILES, UpstreamLab, UpstreamSources, upstreamPatch } from '../../src/upstream/patch.js';
import { thirdPartyDir } from '../helpers/thirdParty.js';
import { which } from '../../src/edges/probe.js';

const SNAP = thirdPartyDir('electrode-upstream');
const has = (tool: string) => which(tool) !== undefined;
const READY = existsSync(SNAP) && process.getuid?.() === 0 && ['clang', 'gcc', 'bpftool', 'unshare', 'nsenter', 'tc'].every(has);
const WHY = `needs root, clang, gcc, bpftool, tc and the snapshot ${SNAP}`;
const FILES = [UPSTREAM_FILES.config, UPSTREAM_FILES.user, UPSTREAM_FILES.common, UPSTREAM_FILES.kern];
/** Linux 5.8's last helper id is csum_level = 135 (see bpf.verifier.test.ts): the lab VMs run 5.8. */
const MAX_HELPER_ID_LINUX_5_8 = 135;

describe.skipIf(!READY)(`upstream xdp-handler, patched, on this kernel (${READY ? 'ready' : WHY})`, () => {
  // named now, created in beforeAll: collecting the tests leaves nothing in /tmp
  const tmp = join(tmpdir(), `el-upstream-build-${process.pid}`);
  const tree = join(tmp, 'tree');
  const ns = `el-upstream-test-${process.pid}`;
  const n = 5;
  const lab: UpstreamLab = {
    n,
    f: 2,
    replicas: Array.from({ length: n }, (_, i) => ({ index: i, ip: `10.78.0.${10 + i}`, mac: `02:4c:0e:0b:00:0${i}`, port: 12345, ifname: 'eth0' })),
    configPath: join(tree, 'config.txt'),
  };
  const pristine: UpstreamSources = {};

  beforeAll(() => {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true, mode: 0o700 });
    for (const f of FILES) {
      pristine[f] = readFileSync(join(SNAP, f), 'utf8');
      mkdirSync(join(tree, 'xdp-handler'), { recursive: true });
    }
    const r = upstreamPatch(pristine, lab);
    for (const f of FILES) writeFileSync(join(tree, f), r.files[f] as string);
  });
  afterAll(async () => {
    await execa('ip', ['netns', 'del', ns], { reject: false });
    rmSync(tmp, { recursive: true, force: true });
  });

  it("upstream's own fast_kern.c does not build without a kernel tree, and libbpf 1.x has no struct bpf_map_def", async () => {
    const raw = join(tmp, 'raw');
    mkdirSync(join(raw, 'xdp-handler'), { recursive: true });
    for (const f of FILES) writeFileSync(join(raw, f), pristine[f] as string);
    const argv = kernBuildArgv(raw, ALL_FAST_PATHS);
    const r = await execa(argv[0] as string, argv.slice(1), { reject: false });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("'linux/tools/lib/bpf/bpf_helpers.h' file not found");
    // even with libbpf-dev's header where the kernel tree's would be, the legacy maps do not compile
    mkdirSync(join(raw, 'xdp-handler', 'linux', 'tools', 'lib'), { recursive: true });
    symlinkSync('/usr/include/bpf', join(raw, 'xdp-handler', 'linux', 'tools', 'lib', 'bpf'));
    const r2 = await execa(argv[0] as string, argv.slice(1), { reject: false });
    expect(r2.exitCode).not.toBe(0);
    expect(r2.stderr).toContain("variable has incomplete type 'struct bpf_map_def'");
  });

  it('the patched fast_kern.c builds and uses no helper newer than Linux 5.8', async () => {
    const argv = kernBuildArgv(tree, ALL_FAST_PATHS);
    await execa(argv[0] as string, argv.slice(1));
    const dis = (await execa('llvm-objdump', ['-d', '--no-show-raw-insn', join(tree, 'xdp-handler', 'fast_kern.o')])).stdout;
    const ids = [...dis.matchAll(/\bcall (0x[0-9a-f]+|\d+)\s*$/gm)].map((m) => Number(m[1]));
    expect(ids.length).toBeGreaterThan(0);
    expect(Math.max(...ids)).toBeLessThanOrEqual(MAX_HELPER_ID_LINUX_5_8);
  });

  it('all seven programs pass the verifier (bpftool loadall into a private bpffs)', async () => {
    const fs = join(tmp, 'bpffs');
    mkdirSync(fs, { recursive: true });
    const script = `mount -t bpf bpf ${fs} && bpftool prog loadall ${tree}/xdp-handler/fast_kern.o ${fs}/p && ls ${fs}/p`;
    const r = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { reject: false });
    expect(r.stderr.split('\n').filter((l) => /failed|Error/.test(l))).toEqual([]);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['FastBroadCast_main', 'HandlePrepareOK_main', 'HandlePrepare_main', 'HandleRequest_main', 'PrepareFastReply_main', 'WriteBuffer_main', 'fastPaxos_main']);
  });

  it('without the unroll flag the verifier refuses HandleRequest (why kernBuildArgv passes it)', async () => {
    const argv = kernBuildArgv(tree, ALL_FAST_PATHS).filter((a) => a !== '-mllvm' && !a.startsWith('-unroll-threshold'));
    const obj = join(tmp, 'rolled.o');
    argv[argv.length - 1] = obj;
    await execa(argv[0] as string, argv.slice(1));
    const fs = join(tmp, 'bpffs2');
    mkdirSync(fs, { recursive: true });
    const r = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t bpf bpf ${fs} && bpftool prog loadall ${obj} ${fs}/p`], { reject: false });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('BPF program is too large. Processed 1000001 insn');
    expect(r.stderr).toContain("prog 'HandleRequest_main': failed to load");
  }, 120_000);

  it("the patched loader builds against libbpf 1.x (upstream's does not)", async () => {
    const argv = loaderBuildArgv(tree);
    const r = await execa(argv[0] as string, argv.slice(1), { reject: false });
    expect(r.stderr.split('\n').filter((l) => l.includes('error'))).toEqual([]);
    expect(r.exitCode).toBe(0);
    const raw = loaderBuildArgv(join(tmp, 'raw'));
    const u = await execa(raw[0] as string, raw.slice(1), { reject: false });
    expect(u.exitCode).not.toBe(0);
    expect(u.stderr).toMatch(/invalid use of undefined type .struct bpf_object_load_attr./);
  });

  it('the loader attaches XDP and TC in a namespace, writes the plan MACs into map_configure, and cleans up on SIGTERM', async () => {
    await execa('ip', ['netns', 'add', ns]);
    await execa('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
    await execa('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await execa('ip', ['-n', ns, 'link', 'set', 'peer0', 'up']);
    const out = join(tmp, 'out');
    mkdirSync(out);
    const loader = loaderArgv(tree, 'eth0').join(' ');
    const inNs = `nsenter --net=/run/netns/${ns} --`;
    const script = [
      'mount -t bpf bpf /sys/fs/bpf || exit 9',
      `${inNs} ${loader} > ${out}/loader.log 2>&1 & pid=$!`,
      // the loader's stdout is a file, so fully buffered: wait on the TC filter instead of its log
      `for i in $(seq 100); do ${inNs} tc filter show dev eth0 egress | grep -q FastBroadCast && break; sleep 0.1; done`,
      `ls /sys/fs/bpf > ${out}/pins`,
      `${inNs} ip -d link show eth0 > ${out}/link`,
      `${inNs} tc filter show dev eth0 egress > ${out}/tc`,
      `bpftool -j map dump name map_configure > ${out}/configure`,
      'kill -TERM $pid; wait $pid; echo $? > ' + `${out}/rc`,
      `ls /sys/fs/bpf > ${out}/pins-after`,
      `${inNs} ip -d link show eth0 > ${out}/link-after`,
    ].join('\n');
    await execa('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], { timeout: 60_000 });
    const rd = (f: string) => readFileSync(join(out, f), 'utf8');
    expect(rd('loader.log')).toContain('Main BPF program attached to TC');
    expect(rd('pins').split('\n')).toEqual(expect.arrayContaining(['FastBroadCast', 'paxos_ctr_state', 'paxos_prepare_buffer', 'paxos_request_buffer']));
    expect(rd('link')).toMatch(/prog\/xdp id \d+/);
    expect(rd('link')).not.toContain('xdpgeneric');
    expect(rd('tc')).toContain('FastBroadCast');
    // map_configure: one entry per replica with the plan's IP, port and MAC (a u32, a be16, 6 bytes)
    const maps = JSON.parse(rd('configure')) as { key: string[]; value: string[] }[] | { key: string[]; value: string[] }[][];
    const entries = (Array.isArray(maps[0]) ? (maps as { key: string[]; value: string[] }[][]).at(-1) : (maps as { key: string[]; value: string[] }[])) ?? [];
    for (const r of lab.replicas) {
      const e = entries[r.index];
      const v = (e?.value ?? []).map((b) => parseInt(b, 16));
      expect(v.slice(0, 4).join('.'), `replica ${r.index} ip`).toBe(r.ip);
      expect((v[4] ?? 0) * 256 + (v[5] ?? 0), `replica ${r.index} port`).toBe(r.port);
      expect(v.slice(6, 12).map((b) => b.toString(16).padStart(2, '0')).join(':'), `replica ${r.index} mac`).toBe(r.mac);
    }
    expect(rd('rc').trim()).toBe('0');
    expect(rd('pins-after')).not.toContain('paxos_');
    expect(rd('link-after')).not.toMatch(/prog\/xdp/);
  });
});
