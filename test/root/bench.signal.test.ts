/**
 * Ctrl-C during a bench (SIGINT to the CLI's process group, as a terminal
 * sends it) on a real netns lab: the host's core_pattern is restored, the
 * run is stored as interrupted, and the lab, its replicas and pins are gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { CORE_PATTERN_FILE } from '../../src/edges/crash.js';
import { projectRoot } from '../../src/edges/paths.js';
import { ResultsFile } from '../../src/bench/types.js';

const LAB = 'elsig';
const cli = join(projectRoot(), 'dist', 'src', 'cli.js');
let home: string;
let env: NodeJS.ProcessEnv;

const netnsPids = (ns: string): string[] => {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
};
const labNamespaces = () =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`el-${LAB}-`));

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(() => {
  if (!existsSync(cli)) throw new Error(`${cli} missing: run \`npm run build\``);
  home = mkdtempSync(join(tmpdir(), 'el-sig-'));
  env = { ...process.env, ELECTRODE_LAB_HOME: join(home, 'labs'), ELECTRODE_LAB_RUNS: join(home, 'runs'), ELECTRODE_LAB_CORE_WAIT_S: '600', CI: 'true' };
});

afterAll(async () => {
  if (labNamespaces().length) await execa('node', [cli, 'down', '--name', LAB], { env, reject: false });
  rmSync(home, { recursive: true, force: true });
});

describe('bench interrupted with Ctrl-C', () => {
  it('restores core_pattern, stores the run as interrupted and takes its lab down', async () => {
    const child = execa('node', [cli, 'bench', '--lab', LAB, '--subnet', '10.92.0.0/24', '--base-port', '53000', '--replicas', '3', '--arms', 'baseline', '--threads', '1', '--repeat', '3', '--duration', '60', '--warmup', '0'], {
      env,
      detached: true, // its own process group, like a shell job
      reject: false,
    });
    const runsDir = join(home, 'runs');
    // the measuring client is running inside the lab's client namespace, cores go to the run
    await until(() => netnsPids(`el-${LAB}-client0`).length > 0 && readFileSync(CORE_PATTERN_FILE, 'utf8').includes(runsDir), 660_000, 'the first trial to start measuring');
    process.kill(-child.pid!, 'SIGINT');
    const r = await child;
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/SIGINT: core_pattern restored/);
    expect(readFileSync(CORE_PATTERN_FILE, 'utf8')).not.toContain(runsDir);
    const [runId] = readdirSync(runsDir);
    const results = JSON.parse(readFileSync(join(runsDir, runId!, 'results.json'), 'utf8')) as ResultsFile;
    expect(results.outcome).toBe('interrupted');
    expect(results.records.length).toBeLessThan(3); // it did not go on with the other repeats
    expect(results.records.every((x) => !x.crashed)).toBe(true);
    expect(labNamespaces()).toEqual([]);
    expect(existsSync(`/sys/fs/bpf/electrode-lab/${LAB}`)).toBe(false);
  }, 900_000);
});
