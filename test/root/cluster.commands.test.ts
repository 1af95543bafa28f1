/**
 * `start` / `client` / `stop` on a real netns lab with the real replica,
 * client and eBPF fast paths: the by-hand workflow the course labs use.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { checkReplicaIndexes, collectReplicaArgs } from '../../src/commands/replicaArgs.js';
import { LabPaths } from '../../src/edges/paths.js';
import { loadProcessRecords } from '../../src/edges/state.js';
import { DiagnosticsError } from '../../src/core/diagnostics.js';
import { NodeBpfStats } from '../../src/lab/bpf.js';
import { processAlive } from '../../src/edges/proc.js';
import { IS_ROOT, SKIP_REASON, cliIn, fileHas, leftovers, tempHome, waitFor } from '../helpers/netns.helpers.js';

describe('--replica-args', () => {
  it('groups flags per replica index across repeats', () => {
    let acc: Record<string, string[]> = {};
    for (const v of ['2:--crash-after 500', '0:--drop-rate 0.05', '2:--log-level debug']) acc = collectReplicaArgs(v, acc);
    expect(acc).toEqual({ '2': ['--crash-after', '500', '--log-level', 'debug'], '0': ['--drop-rate', '0.05'] });
  });
  it('rejects a missing index and an index outside the cluster', () => {
    expect(() => collectReplicaArgs('--crash-after 1')).toThrow(/<replica index>:<flags>/);
    expect(() => checkReplicaIndexes({ '3': ['--crash-after', '1'] }, 3)).toThrow(DiagnosticsError);
    expect(() => checkReplicaIndexes({ '2': [] }, 3)).not.toThrow();
  });
});

describe.skipIf(!IS_ROOT)(`start/client/stop on a netns lab (${IS_ROOT ? 'root' : SKIP_REASON})`, () => {
  const lab = 'clu';
  const home = tempHome('el-cluster-');
  const cli = cliIn(home);
  const paths = new LabPaths(home, lab);

  beforeAll(async () => {
    const r = await cli('--name', lab, 'up', '3', '--provider', 'netns', '--subnet', '10.78.4.0/24');
    expect(r.exitCode, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await cli('--name', lab, 'down');
    expect(await leftovers(lab, '02:4c:')).toEqual([]);
    rmSync(home, { recursive: true, force: true });
  });

  it('client refuses bad numbers with exit 2 and starts nothing', async () => {
    const r = await cli('--name', lab, 'client', '-n', 'lots');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/BAD_OPTION --requests=lots/);
  });

  it('runs all fast paths, survives a leader kill, and stop cleans up', async () => {
    const s = await cli('--name', lab, 'start', '--all');
    expect(s.exitCode, s.stderr).toBe(0);
    const recs = loadProcessRecords(paths).filter((r) => r.name === 'replica');
    expect(recs.map((r) => r.node).sort()).toEqual(['replica0', 'replica1', 'replica2']);

    const again = await cli('--name', lab, 'start');
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/already running.*electrode-lab stop/);

    const c1 = await cli('--name', lab, 'client', '-n', '1000', '-t', '2');
    expect(c1.exitCode, c1.stderr).toBe(0);
    expect(c1.stdout).toMatch(/Completed 1000 requests/);

    // the followers answered from XDP: their fast-reply counters moved
    const st = await cli('--name', lab, 'stats', '--json');
    expect(st.exitCode, st.stderr).toBe(0);
    const stats = (JSON.parse(st.stdout) as { nodes: NodeBpfStats[] }).nodes;
    const replied = stats.filter((n) => n.node !== 'replica0').map((n) => n.reply.replied);
    expect(replied).toHaveLength(2);
    expect(Math.min(...replied)).toBeGreaterThan(0);

    // kill the leader of view 0 by its PID; the next client run needs a view change
    const leader = recs.find((r) => r.node === 'replica0')!;
    process.kill(leader.pid, 'SIGKILL');
    const c2 = await cli('--name', lab, 'client', '-n', '500');
    expect(c2.exitCode, c2.stderr).toBe(0);
    await waitFor('replica1 to log the view change', () => fileHas(paths.processLog('replica1', 'replica'), 'view 1 normal'), 10_000);

    const stop = await cli('--name', lab, 'stop');
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(/replica0: pid \d+ had already exited/);
    expect(loadProcessRecords(paths).filter((r) => r.name === 'replica')).toEqual([]);
    for (const r of recs) expect(processAlive(r.pid)).toBe(false);
    expect(existsSync('/sys/fs/bpf/electrode-lab/clu/replica1/el_ctrl')).toBe(false);
  });
});
