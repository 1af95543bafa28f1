/** src/bpf.ts and `electrode-lab attach/detach/stats`: command sequences (recording runner) and pure parts. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attachFastPaths, detachFastPaths, fastPathStats, formatStatsTable, nodeFiles, parseStats, setFastPaths } from '../../src/bpf.js';
import { fastPathsFromOptions } from '../../src/commands/bpf.js';
import { DiagnosticsError } from '../../src/diagnostics.js';
import { LabPaths, projectRoot } from '../../src/paths.js';
import { NO_FACTS, planFromInputs } from '../../src/plan.js';
import { QuietProgress } from '../../src/progress.js';
import { NetnsProvider } from '../../src/providers/netns.js';
import { RecordingRunner } from '../../src/runner.js';

const home = mkdtempSync(join(tmpdir(), 'el-unit-bpf-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

const STATS = JSON.stringify({
  dispatch: { seen: 10, passed: 9, dropped: 0, cloned: 0, replied: 0, errors: 1 },
  broadcast: { seen: 4, passed: 4, dropped: 0, cloned: 8, replied: 0, errors: 0 },
  quorum: { seen: 6, passed: 2, dropped: 4, cloned: 0, replied: 0, errors: 0 },
  reply: { seen: 0, passed: 0, dropped: 0, cloned: 0, replied: 0, errors: 0 },
});

describe('fast paths through the provider (recording runner, nothing runs)', () => {
  const plan = planFromInputs([{ name: 'fp', replicas: 5 }], NO_FACTS);
  const paths = new LabPaths(home, 'fp');
  const ctx = (runner: RecordingRunner) => ({ runner, paths, progress: new QuietProgress() });
  const loader = join(projectRoot(), 'bpf', 'build', 'el-loader');

  it('attach: one el-loader attach per replica inside its namespace, from the plan only, then the switch-side XDP pass', async () => {
    const r = new RecordingRunner(() => ({ stdout: 'el-loader: attached ...\n' }));
    const lines = await attachFastPaths(plan, new NetnsProvider(), ctx(r), { broadcast: true, quorum: false, reply: true }, 'native');
    expect(lines).toHaveLength(5);
    const rec = r.lines();
    expect(rec).toHaveLength(10);
    expect(rec[0]).toBe(
      `nsenter --net=/run/netns/el-fp-replica0 -- ${loader} attach --pin-dir /sys/fs/bpf/electrode-lab/fp/replica0 --peers ${paths.peerTableFile} --index 0 --ifname eth0 --broadcast --reply --xdp-mode native`,
    );
    expect(rec[1]).toBe(`nsenter --net=/run/netns/el-fp-sw -- ${loader} peer-pass --ifname p-replica0`);
    expect(rec[8]).toContain('el-fp-replica4 -- ');
    expect(rec[8]).toContain('--index 4 ');
    // clients get no fast paths
    expect(rec.some((l) => l.includes('client0'))).toBe(false);
  });

  it('attach: a loader failure names the node and carries the loader message', async () => {
    const r = new RecordingRunner((argv) => (argv.includes('--index') && argv.includes('2') ? { exitCode: 1, stderr: "el-loader: interface 'eth0' not found in this network namespace: ..." } : {}));
    await expect(attachFastPaths(plan, new NetnsProvider(), ctx(r), { broadcast: true, quorum: true, reply: true })).rejects.toThrow(/replica2: el-loader attach failed \(exit 1\):\nel-loader: interface 'eth0' not found/);
  });

  it('set / detach / stats command lines', async () => {
    const r = new RecordingRunner((argv) => (argv.includes('stats') ? { stdout: STATS } : {}));
    await setFastPaths(plan, new NetnsProvider(), ctx(r), { broadcast: false, quorum: true, reply: false });
    await detachFastPaths(plan, new NetnsProvider(), ctx(r));
    const s = await fastPathStats(plan, new NetnsProvider(), ctx(r));
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
    const fake = { exec: async (_p: unknown, node: { name: string }, argv: string[]) => (calls.push([node.name, ...argv]), { argv, exitCode: 0, signal: null, durationMs: 0, stdout: '', stderr: '' }) };
    await attachFastPaths(vplan, fake as never, ctx(new RecordingRunner()), { broadcast: true, quorum: true, reply: true });
    expect(calls).toHaveLength(3);
    expect(calls[1]).toEqual(['replica1', loader, 'attach', '--pin-dir', vplan.nodes[1]!.pinDir, '--peers', paths.peerTableFile, '--index', '1', '--ifmac', vplan.nodes[1]!.mac, '--broadcast', '--quorum', '--reply', '--xdp-mode', 'auto']);
  });
});

describe('pure parts', () => {
  it('parseStats reads el-loader stats --json and rejects anything else', () => {
    expect(parseStats('replica1', STATS).quorum).toEqual({ seen: 6, passed: 2, dropped: 4, cloned: 0, replied: 0, errors: 0 });
    expect(() => parseStats('replica1', 'el-loader: oops')).toThrow(/replica1: el-loader stats printed no JSON/);
    expect(() => parseStats('replica1', '{"dispatch":{}}')).toThrow(/dispatch.seen is not a number/);
  });

  it('formatStatsTable: one row per node and program', () => {
    const t = formatStatsTable([parseStats('replica0', STATS)]).split('\n');
    expect(t[0]).toMatch(/^NODE\s+PROGRAM\s+SEEN\s+PASSED\s+DROPPED\s+CLONED\s+REPLIED\s+ERRORS$/);
    expect(t).toHaveLength(5);
    expect(t[2]).toMatch(/^replica0\s+broadcast\s+4\s+4\s+0\s+8\s+0\s+0$/);
  });

  it('attach flags: --all, single arms, none, and --all mixed with arms is refused', () => {
    expect(fastPathsFromOptions({ all: true })).toEqual({ broadcast: true, quorum: true, reply: true });
    expect(fastPathsFromOptions({ quorum: true })).toEqual({ broadcast: false, quorum: true, reply: false });
    expect(fastPathsFromOptions({})).toEqual({ broadcast: false, quorum: false, reply: false });
    expect(() => fastPathsFromOptions({ all: true, reply: true })).toThrow(DiagnosticsError);
    expect(() => fastPathsFromOptions({ all: true, reply: true })).toThrow(/BPF_FLAGS --all/);
  });
});
