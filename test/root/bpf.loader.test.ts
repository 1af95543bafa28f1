/**
 * el-loader's refusals, run with the ASan+UBSan build: each bad input exits
 * non-zero with one line naming the problem and the fix, and creates
 * nothing (no pins, nothing attached). Real kernel, throw-away namespace.
 */
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ASAN_LOADER, isRoot } from '../helpers/bpf.helpers.js';

const NS = `el-bpfldr-${process.pid}`;
const PIN = `/sys/fs/bpf/electrode-lab-ldrtest-${process.pid}/node`;
const dir = mkdtempSync(join(tmpdir(), 'el-ldr-'));
const peers = join(dir, 'peers.table');
const GOOD = 'cluster 3 1\npeer 0 10.88.0.10 02:4c:00:00:00:00 51000\npeer 1 10.88.0.11 02:4c:00:00:00:01 51001\npeer 2 10.88.0.12 02:4c:00:00:00:02 51002\n';
// every refusal goes through the one cleanup path: LeakSanitizer checks it frees what it opened
const ENV = { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1' };

async function ldr(args: string[], opts: { asUser?: boolean } = {}) {
  const inner = [ASAN_LOADER, ...args];
  const argv = ['nsenter', `--net=/run/netns/${NS}`, '--', ...(opts.asUser ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'] : []), ...inner];
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, env: ENV, timeout: 30_000 });
  expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error:/);
  return r;
}

function attachArgs(extra: string[] = [], pin = PIN): string[] {
  return ['attach', '--pin-dir', pin, '--peers', peers, '--index', '1', '--ifname', 'eth0', ...extra];
}

async function nothingCreated(): Promise<void> {
  expect(existsSync(PIN)).toBe(false);
  const link = await execa('ip', ['-n', NS, '-d', '-j', 'link', 'show', 'dev', 'eth0']);
  expect(link.stdout).not.toMatch(/"xdp"/);
}

describe.skipIf(!isRoot)('el-loader refusals (ASan build)', () => {
  beforeAll(async () => {
    await execa('ip', ['netns', 'add', NS]);
    // a veth pair with both ends in this namespace: nothing ever leaves it. Jumbo
    // MTU so that the kernel refuses native XDP ("MTU too large"), as it would on a
    // mis-sized lab NIC
    await execa('ip', ['-n', NS, 'link', 'add', 'eth0', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'eth0p', 'mtu', '9000']);
    await execa('ip', ['-n', NS, 'link', 'set', 'eth0', 'address', '02:4c:00:00:00:01', 'up']);
    await execa('ip', ['-n', NS, 'link', 'set', 'eth0p', 'up']);
  });
  afterAll(async () => {
    await execa('ip', ['netns', 'del', NS], { reject: false });
    await execa('rm', ['-rf', '--one-file-system', `/sys/fs/bpf/electrode-lab-ldrtest-${process.pid}`], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });

  it('missing peers file: names the file and `electrode-lab up`', async () => {
    const r = await ldr(['attach', '--pin-dir', PIN, '--peers', join(dir, 'absent'), '--index', '0', '--ifname', 'eth0']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/peers file .*absent: No such file or directory; .*electrode-lab up/);
    await nothingCreated();
  });

  const malformed: [string, string, RegExp][] = [
    ['a peer line with a bad MAC', GOOD.replace('02:4c:00:00:00:02', '02:4c:zz'), /:4: '02:4c:zz' is not a MAC address/],
    ['a bad IPv4', GOOD.replace('10.88.0.11', '10.88.0.300'), /:3: '10.88.0.300' is not an IPv4 address/],
    ['a missing peer', GOOD.split('\n').slice(0, 3).join('\n') + '\n', /no `peer 2 \.\.\.` line for a cluster of 3/],
    ['an unknown keyword', '# ok\ncluster 3 1\nreplica 1.2.3.4:5\n', /:3: unknown line starting with 'replica'/],
    ['a peer index past the cluster', GOOD + 'peer 3 10.88.0.13 02:4c:00:00:00:03 51003\n', /:5: peer index 3 out of range 0\.\.2/],
    ['f too large for n', GOOD.replace('cluster 3 1', 'cluster 3 2'), /:1: f=2 with 3 replicas: quorums of f\+1 intersect only with exactly 2f\+1 = 5 replicas/],
    // more replicas than 2f+1: two quorums of f+1 can miss each other
    ['n > 2f+1', GOOD.replace('cluster 3 1', 'cluster 4 1') + 'peer 3 10.0.0.13 02:00:00:00:00:03 51003\n', /:1: f=1 with 4 replicas: quorums of f\+1 intersect only with exactly 2f\+1 = 3 replicas/],
    ['f=0 with 3 replicas', GOOD.replace('cluster 3 1', 'cluster 3 0'), /:1: f=0 with 3 replicas/],
    ['16 replicas', GOOD.replace('cluster 3 1', 'cluster 16 7'), /cluster size 16 out of range 1\.\.15/],
  ];
  for (const [what, text, msg] of malformed) {
    it(`malformed peers file (${what}): the line number and the problem`, async () => {
      writeFileSync(peers, text);
      const r = await ldr(attachArgs());
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(msg);
      await nothingCreated();
    });
  }

  it('index out of range', async () => {
    writeFileSync(peers, GOOD);
    const r = await ldr(['attach', '--pin-dir', PIN, '--peers', peers, '--index', '3', '--ifname', 'eth0']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/--index 3 out of range: the cluster in .* has replicas 0\.\.2/);
    await nothingCreated();
  });

  it('interface not found, by name and by MAC', async () => {
    writeFileSync(peers, GOOD);
    let r = await ldr(['attach', '--pin-dir', PIN, '--peers', peers, '--index', '1', '--ifname', 'nope0']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/interface 'nope0' not found in this network namespace: run el-loader inside the node \(`nsenter --net/);
    r = await ldr(['attach', '--pin-dir', PIN, '--peers', peers, '--index', '1', '--ifmac', '02:4c:00:00:00:09']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/no interface with MAC 02:4c:00:00:00:09/);
    await nothingCreated();
  });

  it('not root: says so and what to do', async () => {
    writeFileSync(peers, GOOD);
    const r = await ldr(attachArgs(), { asUser: true });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/must run as root: .*CAP_SYS_ADMIN/);
    await nothingCreated();
  });

  it('pin dir not on a bpffs: names `mount -t bpf bpf /sys/fs/bpf`', async () => {
    writeFileSync(peers, GOOD);
    const r = await ldr(attachArgs([], join(dir, 'pins')));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/is not on a bpf filesystem .*mount -t bpf bpf \/sys\/fs\/bpf/);
    expect(existsSync(join(dir, 'pins'))).toBe(false);
  });

  it('native XDP refused: --xdp-mode native fails with the kernel reason; auto falls back to generic LOUDLY', async () => {
    writeFileSync(peers, GOOD);
    let r = await ldr(attachArgs(['--xdp-mode', 'native']));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/attach el_xdp_dispatch to eth0 in native mode: .*kernel says: .*MTU.*; lower the MTU .*ip link set eth0 mtu 3000/);
    await nothingCreated();
    r = await ldr(attachArgs(['--reply', '--xdp-mode', 'auto']));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/WARNING: native XDP refused on eth0 .*falling back to GENERIC mode.*Fix: /);
    expect(r.stdout).toMatch(/attached el_xdp_dispatch \(xdp generic\)/);
    const show = await ldr(['show', '--pin-dir', PIN, '--json']);
    expect(JSON.parse(show.stdout).attached).toEqual(
      expect.arrayContaining([expect.objectContaining({ hook: 'xdp', mode: 'generic', prog: 'el_xdp_dispatch', current: true })]),
    );
    // `set` switches at run time without reloading: same program id before and after
    const before = JSON.parse(show.stdout) as { attached: { id: number }[]; config: { enabled: number } };
    const s = await ldr(['set', '--pin-dir', PIN, '--broadcast', 'on', '--reply', 'off']);
    expect(s.exitCode, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/fast paths now: broadcast$/m);
    const after = JSON.parse((await ldr(['show', '--pin-dir', PIN, '--json'])).stdout) as typeof before;
    expect(after.config.enabled).toBe(1);
    expect(after.attached.map((a) => a.id)).toEqual(before.attached.map((a) => a.id));
    expect((await ldr(['set', '--pin-dir', PIN, '--quorum', 'maybe'])).stderr).toMatch(/--quorum maybe: expected on or off/);
    const d = await ldr(['detach', '--pin-dir', PIN, '--ifname', 'eth0']);
    expect(d.exitCode, d.stderr).toBe(0);
    await nothingCreated();
  });

  it('stats/set without pins name `electrode-lab attach`; show reports nothing pinned', async () => {
    for (const cmd of [['stats'], ['set', '--reply', 'on']]) {
      const r = await ldr([cmd[0]!, '--pin-dir', PIN, ...cmd.slice(1)]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/No such file or directory; attach the fast paths first with `electrode-lab attach`/);
    }
    const r = await ldr(['show', '--pin-dir', PIN, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ pinDir: PIN, pinned: false, attached: [] });
  });
});
