/** The built CLI's bench/report/crashes input handling: bad input -> exit 2, a hint, nothing run. */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { projectRoot } from '../../src/edges/paths.js';

const cli = join(projectRoot(), 'dist', 'src', 'cli.js');
const runs = mkdtempSync(join(tmpdir(), 'el-benchcli-'));
const env = { ...process.env, ELECTRODE_LAB_RUNS: runs, ELECTRODE_LAB_HOME: join(runs, 'home') };
afterAll(() => rmSync(runs, { recursive: true, force: true }));
const run = (...args: string[]) => execa('node', [cli, ...args], { env, reject: false });

describe('bench CLI input', () => {
  it.each([
    [['--replicas', '4'], /4 replicas: use an odd count/],
    [['--replicas', '3,x'], /'x' is not a whole number/],
    [['--arms', 'baseline,turbo'], /unknown arm\(s\) turbo; arms are baseline, broadcast, quorum, reply, all/],
    [['--threads', '0'], /0 threads: use 1 to 256/],
    [['--requests', '5', '--duration', '3'], /BENCH_LOAD .*give one of them/],
    [['--replica-args', 'x'], /expected <replica index>:<flags>/],
    [['--provider', 'docker'], /SPEC_UNKNOWN_PROVIDER .*registered providers: netns, vagrant/],
    [['--clients', '9'], /9 clients: use 1 to 8 client nodes/],
    [['--clients', '1,2', '--impl', 'ours,upstream', '--electrode-tree', '/'], /BENCH_CLIENTS .*one client node/],
  ])('bench %j -> exit 2 with a hint, no run folder', async (args, msg) => {
    expect(existsSync(cli), 'run `npm run build` first').toBe(true);
    const r = await run('bench', ...args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(readdirSync(runs).filter((d) => d !== 'home')).toEqual([]);
  });

  it('--dry-run prints the interleaved schedule and runs nothing', async () => {
    const r = await run('--dry-run', 'bench', '--replicas', '3', '--arms', 'baseline,broadcast', '--threads', '1', '--repeat', '2');
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => /^\s+\d+\./.test(l));
    expect(lines.map((l) => l.replace(/^\s+\d+\.\s+/, ''))).toEqual([
      '3 replicas, baseline, 1 threads, repeat 1',
      '3 replicas, broadcast, 1 threads, repeat 1',
      '3 replicas, broadcast, 1 threads, repeat 2',
      '3 replicas, baseline, 1 threads, repeat 2',
    ]);
  });

  it('report and crashes without runs name the command to run', async () => {
    for (const cmd of ['report', 'crashes']) {
      const r = await run(cmd);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/no bench runs under .*run `electrode-lab bench` first/);
    }
    const r = await run('report', 'nosuchrun');
    expect(r.stderr).toMatch(/no run 'nosuchrun'/);
  });
});
