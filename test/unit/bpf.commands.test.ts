/** src/lab/bpf.ts and `electrode-lab attach/detach/stats`: command sequences (recording runner) and pure parts. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attachFastPaths, detachFastPaths, fastPathStats, formatAttach, formatStatsTable, nodeFiles, parseAttach, parseStats, setFastPaths, unavailableFastPaths } from '../../src/lab/bpf.js';
import { openLab } from '../../src/providers/lab.js';
import { fastPathsFromOptions } from '../../src/commands/bpf.js';
import { DiagnosticsError } from '../../src/core/diagnostics.js';
import { LabPaths, projectRoot } from '../../src/edges/paths.js';
import { NO_FACTS, planFromInputs } from '../../src/core/plan.js';
import { QuietProgress } from '../../src/edges/progress.js';
import { NetnsProvider } from '../../src/providers/netns.js';
import { VagrantProvider } from '../../src/providers/vagrant.js';
import { RecordingRunner } from '../../src/edges/runner.js';

const home = mkdtempSync(join(tmpdir(), 'el-unit-bpf-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

const z = { fallback: 0, full: 0 };
const STATS = JSON.stringify({
  dispatch: { seen: 10, passed: 9, dropped: 0, cloned: 0, replied: 0, ...z, errors: 1 },
  broadcast: { seen: 4, passed: 4, dropped: 0, cloned: 8, replied: 0, ...z, errors: 0 },
  quorum: { seen: 6, passed: 2, dropped: 4, cloned: 0, replied: 0, fallback: 1, full: 0, errors: 0 },
  reply: { seen: 3, passed: 0, dropped: 0, cloned: 0, replied: 1, fallback: 2, full: 2, errors: 0 },
  egress: { seen: 5, passed: 5, dropped: 0, cloned: 0, replied: 0, ...z, errors: 0 },
});

/** What el-loader attach --json prints; `rejected` objects carry the verifier's meaning. */
const attachJson = (rejected: string[] = []) =>
  JSON.stringify({
    ifname: 'eth0', ifindex: 2, xdp_mode: 'native', index: 0, n: 5, f: 2,
    enabled: rejected.includes('el_reply') ? 'broadcast' : 'broadcast,reply',
    loaded: rejected.includes('el_reply') ? 'broadcast,quorum' : 'broadcast,quorum,reply',
    objects: ['el_tc', 'el_quorum', 'el_reply', 'el_broadcast'].map((o) => (rejected.includes(o) ? { object: o, loaded: false, meaning: 'a pointer lost its type', verdict: "R5 invalid mem access 'inv'" } : { object: o, loaded: true })),
  });

describe('fast paths through the provider (recording runner, nothing runs)', () => {
  const plan = planFromInputs([{ name: 'fp', replicas: 5 }], NO_FACTS);
  const paths = new LabPaths(home, 'fp');
  const ctx = (runner: RecordingRunner) => ({ runner, paths, progress: new QuietProgress() });
  const loader = join(projectRoot(), 'bpf', 'build', 'el-loader');

  it('attach on netns: TC ingress by default (the veth\'s cheaper hook), no switch-side XDP pass; --hook xdp adds it', async () => {
    const r = new RecordingRunner((argv) => (argv.includes('attach') ? { stdout: attachJson() + '\n' } : {}));
    await attachFastPaths(openLab(new NetnsProvider(), plan, ctx(r)), { broadcast: true, quorum: false, reply: true });
    // an explicit XDP mode asks for the XDP hook
    await attachFastPaths(openLab(new NetnsProvider(), plan, ctx(r)), { broadcast: true, quorum: false, reply: true }, 'generic');
    const rec = r.lines();
    expect(rec[10]).toContain(' --reply --xdp-mode generic --json');
    expect(rec[0]).toBe(
      `nsenter --net=/run/netns/el-fp-replica0 -- ${loader} attach --pin-dir /sys/fs/bpf/electrode-lab/fp/replica0 --peers ${paths.peerTableFile} --index 0 --ifname eth0 --broadcast --reply --hook tc --json`,
    );
    // an XDP pass an earlier --hook xdp attach left on the switch side goes
    expect(rec[1]).toBe(`nsenter --net=/run/netns/el-fp-sw -- ${loader} peer-pass --ifname p-replica0 --off`);
  });

  it('attach --hook xdp: one el-loader attach per replica inside its namespace, from the plan only, then the switch-side XDP pass', async () => {
    const r = new RecordingRunner((argv) => (argv.includes('attach') ? { stdout: attachJson() + '\n' } : {}));
    const results = await attachFastPaths(openLab(new NetnsProvider(), plan, ctx(r)), { broadcast: true, quorum: false, reply: true }, 'native', 'xdp');
    expect(results.map((x) => x.node)).toEqual(['replica0', 'replica1', 'replica2', 'replica3', 'replica4']);
    expect(results[0]).toMatchObject({ xdp_mode: 'native', enabled: 'broadcast,reply', loaded: 'broadcast,quorum,reply' });
    const rec = r.lines();
    expect(rec).toHaveLength(10);
    expect(rec[0]).toBe(
      `nsenter --net=/run/netns/el-fp-replica0 -- ${loader} attach --pin-dir /sys/fs/bpf/electrode-lab/fp/replica0 --peers ${paths.peerTableFile} --index 0 --ifname eth0 --broadcast --reply --xdp-mode native --json`,
    );
    expect(rec[1]).toBe(`nsenter --net=/run/netns/el-fp-sw -- ${loader} peer-pass --ifname p-replica0`);
    expect(rec[8]).toContain('el-fp-replica4 -- ');
    expect(rec[8]).toContain('--index 4 ');
    // clients get no fast paths
    expect(rec.some((l) => l.includes('client0'))).toBe(false);
  });

  it('attach: a loader failure names the node and carries the loader message', async () => {
    const r = new RecordingRunner((argv) => (argv.includes('--index') && argv.includes('2') ? { exitCode: 1, stderr: "el-loader: interface 'eth0' not found in this network namespace: ..." } : argv.includes('attach') ? { stdout: attachJson() } : {}));
    await expect(attachFastPaths(openLab(new NetnsProvider(), plan, ctx(r)), { broadcast: true, quorum: true, reply: true })).rejects.toThrow(/replica2: el-loader attach failed \(exit 1\):\nel-loader: interface 'eth0' not found/);
  });

  it('set / detach / stats command lines', async () => {
    const r = new RecordingRunner((argv) => (argv.includes('stats') ? { stdout: STATS } : {}));
    await setFastPaths(openLab(new NetnsProvider(), plan, ctx(r)), { broadcast: false, quorum: true, reply: false });
    await detachFastPaths(openLab(new NetnsProvider(), plan, ctx(r)));
    const s = await fastPathStats(openLab(new NetnsProvider(), plan, ctx(r)));
    const rec = r.lines();
    expect(rec[0]).toBe(`nsenter --net=/run/netns/el-fp-replica0 -- ${loader} set --pin-dir /sys/fs/bpf/electrode-lab/fp/replica0 --broadcast off --quorum on --reply off`);
    expect(rec[5]).toBe(`nsenter --net=/run/netns/el-fp-replica0 -- ${loader} detach --pin-dir /sys/fs/bpf/electrode-lab/fp/replica0 --ifname eth0`);
    expect(rec[6]).toBe(`nsenter --net=/run/netns/el-fp-sw -- ${loader} peer-pass --ifname p-replica0 --off`);
    expect(rec[15]).toBe(`nsenter --net=/run/netns/el-fp-replica0 -- ${loader} stats --pin-dir /sys/fs/bpf/electrode-lab/fp/replica0 --json`);
    expect(s.map((x) => x.node)).toEqual(['replica0', 'replica1', 'replica2', 'replica3', 'replica4']);
    expect(s[0]!.broadcast.cloned).toBe(8);
  });

  it('VMs: the NIC by the plan MAC, files at the host paths (the vagrant provider mirrors them), no switch namespace', async () => {
    const vplan = planFromInputs([{ name: 'vm', replicas: 3, provider: 'vagrant' }], NO_FACTS);
    expect(nodeFiles(vplan, '/host/peers.table')).toEqual({ loader, peers: '/host/peers.table' });
    const calls: string[][] = [];
    // the vagrant provider's own hooks, its exec recorded
    const real = new VagrantProvider();
    const fake = { name: 'vagrant', ingressHook: real.ingressHook, nicArgs: real.nicArgs.bind(real), exec: async (_p: unknown, node: { name: string }, argv: string[]) => (calls.push([node.name, ...argv]), { argv, exitCode: 0, signal: null, durationMs: 0, stdout: attachJson(), stderr: '' }) };
    await attachFastPaths(openLab(fake as never, vplan, ctx(new RecordingRunner())), { broadcast: true, quorum: true, reply: true });
    expect(calls).toHaveLength(3);
    expect(calls[1]).toEqual(['replica1', loader, 'attach', '--pin-dir', vplan.nodes[1]!.pinDir, '--peers', paths.peerTableFile, '--index', '1', '--ifmac', vplan.nodes[1]!.mac, '--broadcast', '--quorum', '--reply', '--xdp-mode', 'auto', '--json']);
  });
});

describe('pure parts', () => {
  it('parseStats reads el-loader stats --json and rejects anything else', () => {
    expect(parseStats('replica1', STATS).quorum).toEqual({ seen: 6, passed: 2, dropped: 4, cloned: 0, replied: 0, fallback: 1, full: 0, errors: 0 });
    expect(parseStats('replica1', STATS).reply).toMatchObject({ replied: 1, fallback: 2, full: 2 });
    expect(parseStats('replica1', STATS).egress.seen).toBe(5);
    // an older loader's JSON without the fallback counters is refused, not read as zeros
    expect(() => parseStats('replica1', STATS.replace(/"fallback":\d+,/g, ''))).toThrow(/fallback is not a number/);
    expect(() => parseStats('replica1', 'el-loader: oops')).toThrow(/replica1: el-loader stats printed no JSON/);
    expect(() => parseStats('replica1', '{"dispatch":{}}')).toThrow(/dispatch.seen is not a number/);
  });

  it('formatStatsTable: one row per node and program', () => {
    const t = formatStatsTable([parseStats('replica0', STATS)]).split('\n');
    expect(t[0]).toMatch(/^NODE\s+PROGRAM\s+SEEN\s+PASSED\s+DROPPED\s+CLONED\s+REPLIED\s+FALLBACK\s+FULL\s+ERRORS$/);
    expect(t).toHaveLength(6);
    expect(t[2]).toMatch(/^replica0\s+broadcast\s+4\s+4\s+0\s+8\s+0\s+0\s+0\s+0$/);
    expect(t[4]).toMatch(/^replica0\s+reply\s+3\s+0\s+0\s+0\s+1\s+2\s+2\s+0$/);
  });

  it('attach results: what loaded per node, what a kernel refused and why, and which asked-for paths are missing', () => {
    const ok = parseAttach('replica0', attachJson());
    const refused = parseAttach('replica1', attachJson(['el_reply']));
    expect(() => parseAttach('replica2', 'el-loader: attached')).toThrow(/replica2: el-loader attach printed no JSON/);
    expect(formatAttach([ok, refused])).toEqual([
      'replica0: xdp native on eth0, fast paths on: broadcast,reply, loaded: broadcast,quorum,reply',
      'replica1: xdp native on eth0, fast paths on: broadcast, loaded: broadcast,quorum',
      "replica1:   el_reply REJECTED by this kernel's verifier: a pointer lost its type",
    ]);
    expect(unavailableFastPaths([ok, refused], { broadcast: true, quorum: false, reply: true })).toEqual(['replica1: reply did not load (el_reply: a pointer lost its type)']);
    expect(unavailableFastPaths([ok], { broadcast: true, quorum: true, reply: true })).toEqual([]);
  });

  it('attach flags: --all, single arms, none, and --all mixed with arms is refused', () => {
    expect(fastPathsFromOptions({ all: true })).toEqual({ broadcast: true, quorum: true, reply: true });
    expect(fastPathsFromOptions({ quorum: true })).toEqual({ broadcast: false, quorum: true, reply: false });
    expect(fastPathsFromOptions({})).toEqual({ broadcast: false, quorum: false, reply: false });
    expect(() => fastPathsFromOptions({ all: true, reply: true })).toThrow(DiagnosticsError);
    expect(() => fastPathsFromOptions({ all: true, reply: true })).toThrow(/BPF_FLAGS --all/);
  });
});
