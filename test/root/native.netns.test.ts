/**
 * The native replica and client on a REAL netns lab (root): one network
 * namespace per node behind the lab's bridge, brought up and down through
 * the built CLI; replicas and the client run inside their nodes through the
 * netns provider. 3, 5 and 7 replicas: 10,000 ops commit; a leader
 * killed mid-run (SIGKILL by PID) forces a view change the client survives;
 * killed followers (two for n >= 5) and 5 % drop are survived.
 * Same scenarios and checks as native.cluster.test.ts (loopback).
 * Then with the REAL eBPF fast paths attached (el-loader through
 * `electrode-lab attach --all`): the replicas run --fast-broadcast
 * --fast-quorum --fast-reply, the kernel counters prove the programs fired,
 * and a leader kill still ends in a consistent history (el_ctrl follows the
 * view change, or the new leader's broadcasts and the followers' fast
 * replies would go wrong).
 */
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LabPaths } from '../../src/edges/paths.js';
import { Plan, clients, replicas } from '../../src/core/plan.js';
import { QuietProgress } from '../../src/edges/progress.js';
import { NetnsProvider } from '../../src/providers/netns.js';
import { ExecaRunner } from '../../src/edges/runner.js';
import { loadPlan } from '../../src/edges/state.js';
import { ProviderLauncher, TestCluster, buildNative } from '../helpers/cluster.js';

const IS_ROOT = process.getuid?.() === 0;
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const home = mkdtempSync(join(tmpdir(), 'el-native-netns-'));
const scratch = mkdtempSync(join(tmpdir(), 'el-native-netns-run-'));
const provider = new NetnsProvider();
const labs: string[] = [];
const launchers: ProviderLauncher[] = [];
let seq = 0;

const cli = (...args: string[]) => execa('node', [CLI, ...args], { reject: false, env: { ELECTRODE_LAB_HOME: home, CI: 'true' } });

beforeAll(async () => {
  if (!IS_ROOT) return;
  await buildNative();
  // the CLI is run from dist/: make sure it is there (npm test builds it too)
  const tsc = await execa('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, reject: false });
  if (tsc.exitCode !== 0) throw new Error(`tsc failed:\n${tsc.stdout}`);
}, 240_000);

afterEach(async () => {
  for (const l of launchers.splice(0)) await l.cleanup();
});

afterAll(async () => {
  if (IS_ROOT) for (const lab of labs) await cli('down', '--name', lab);
  rmSync(home, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
}, 120_000);

describe.skipIf(!IS_ROOT).each([3, 5, 7])('%i replicas on a real netns lab', (n) => {
  const lab = `nat${n}x${process.pid % 1000}`;
  let plan: Plan;

  beforeAll(async () => {
    labs.push(lab);
    const up = await cli('up', String(n), '--provider', 'netns', '--name', lab, '--subnet', `10.24${n}.0.0/24`, '--clients', '1');
    if (up.exitCode !== 0) throw new Error(`electrode-lab up failed:\n${up.stdout}\n${up.stderr}`);
    const p = loadPlan(new LabPaths(home, lab));
    if (!p) throw new Error(`lab ${lab} has no saved plan`);
    plan = p;
  }, 120_000);

  afterAll(async () => {
    const down = await cli('down', '--name', lab);
    expect(down.exitCode, down.stderr).toBe(0);
  }, 120_000);

  function cluster(): TestCluster {
    const launcher = new ProviderLauncher(provider, plan, { runner: new ExecaRunner(), paths: new LabPaths(home, lab), progress: new QuietProgress() });
    launchers.push(launcher);
    const reps = replicas(plan);
    const client = clients(plan)[0];
    if (!client) throw new Error('the lab has no client node');
    return new TestCluster({
      dir: join(scratch, `${lab}-${seq}`),
      procName: `replica-t${seq++}`,
      n,
      f: plan.cluster.f,
      addrs: reps.map((r) => ({ ip: r.ip, port: r.port })),
      replicaNodes: reps.map((r) => r.name),
      clientNode: client.name,
      launcher,
    });
  }

  it('commits 10,000 operations across namespaces, identically everywhere', async () => {
    const c = cluster();
    await c.start();
    const r = await c.runClient(['-n', '10000', '-t', '4']);
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.json.completed).toBe(10000);
    expect(r.acks).toHaveLength(10000);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
    expect(c.highestNormalView()).toBe(0);
  }, 120_000);

  it('survives killing the leader mid-run: view change, the client finishes', async () => {
    const c = cluster();
    await c.start();
    const client = c.runClient(['-n', '10000', '-t', '4']);
    await c.waitCommitted(0, 2000);
    await c.kill(0);
    const r = await client;
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(10000);
    expect(r.json.timeouts).toBeGreaterThan(0);
    expect(c.highestNormalView()).toBeGreaterThanOrEqual(1);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
  }, 120_000);

  const victims = n >= 5 ? [n - 1, n - 2] : [n - 1];
  it(`survives killing follower(s) ${victims.join(' and ')} mid-run`, async () => {
    const c = cluster();
    await c.start();
    const client = c.runClient(['-n', '10000', '-t', '4']);
    await c.waitCommitted(0, 2000);
    for (const v of victims) await c.kill(v);
    const r = await client;
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(10000);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
  }, 120_000);

  it('survives 5 % packet drop on every replica', async () => {
    const c = cluster();
    await c.start(() => ['--drop-rate', '0.05']);
    const r = await c.runClient(['-n', '10000', '-t', '8', '--timeout-ms', '20']);
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(10000);
    expect(r.json.timeouts).toBeGreaterThan(0);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
  }, 120_000);
});

type Counters = { seen: number; passed: number; dropped: number; cloned: number; replied: number; errors: number };
interface Stats { dispatch: Counters; broadcast: Counters; quorum: Counters; reply: Counters }

describe.skipIf(!IS_ROOT).each([3, 5])('%i replicas with the real eBPF fast paths (netns)', (n) => {
  const lab = `naf${n}x${process.pid % 1000}`;
  let plan: Plan;

  beforeAll(async () => {
    labs.push(lab);
    const up = await cli('up', String(n), '--provider', 'netns', '--name', lab, '--subnet', `10.25${n}.0.0/24`, '--clients', '1');
    if (up.exitCode !== 0) throw new Error(`electrode-lab up failed:\n${up.stdout}\n${up.stderr}`);
    const p = loadPlan(new LabPaths(home, lab));
    if (!p) throw new Error(`lab ${lab} has no saved plan`);
    plan = p;
  }, 120_000);

  afterAll(async () => {
    const down = await cli('down', '--name', lab);
    expect(down.exitCode, down.stderr).toBe(0);
  }, 120_000);

  async function attachedCluster(): Promise<TestCluster> {
    const att = await cli('attach', '--name', lab, '--all');
    if (att.exitCode !== 0) throw new Error(`electrode-lab attach --all failed:\n${att.stdout}\n${att.stderr}`);
    const launcher = new ProviderLauncher(provider, plan, { runner: new ExecaRunner(), paths: new LabPaths(home, lab), progress: new QuietProgress() });
    launchers.push(launcher);
    const reps = replicas(plan);
    const c = new TestCluster({
      dir: join(scratch, `${lab}-${seq}`),
      procName: `replica-t${seq++}`,
      n,
      f: plan.cluster.f,
      addrs: reps.map((r) => ({ ip: r.ip, port: r.port })),
      replicaNodes: reps.map((r) => r.name),
      clientNode: clients(plan)[0]!.name,
      launcher,
    });
    await c.start((i) => ['--bpf-pin-dir', reps[i]!.pinDir, '--fast-broadcast', '--fast-quorum', '--fast-reply']);
    return c;
  }

  async function stats(): Promise<Record<string, Stats>> {
    const r = await cli('stats', '--name', lab, '--json');
    if (r.exitCode !== 0) throw new Error(`electrode-lab stats failed:\n${r.stderr}`);
    const raw = JSON.parse(r.stdout) as { nodes: (Stats & { node: string })[] };
    const out: Record<string, Stats> = {};
    for (const s of raw.nodes) out[s.node] = s;
    return out;
  }

  it('commits 10,000 ops with broadcast, quorum pruning and fast reply firing', async () => {
    const c = await attachedCluster();
    const r = await c.runClient(['-n', '10000', '-t', '4']);
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(10000);
    const s = await stats();
    const leader = replicas(plan)[0]!.name;
    expect(s[leader]!.broadcast.cloned, JSON.stringify(s[leader])).toBeGreaterThan(0);
    expect(s[leader]!.quorum.seen).toBeGreaterThan(0);
    const followersReplied = replicas(plan).slice(1).reduce((a, f) => a + s[f.name]!.reply.replied, 0);
    expect(followersReplied).toBeGreaterThan(0);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
    // followers appended ops from the kernel's ring buffer
    for (let i = 1; i < n; i++) expect(c.log(i)).toMatch(/fast-reply records [1-9]\d*/);
  }, 120_000);

  it('survives killing the leader mid-run with the fast paths on', async () => {
    const c = await attachedCluster();
    const client = c.runClient(['-n', '10000', '-t', '4']);
    await c.waitCommitted(0, 2000);
    await c.kill(0);
    const r = await client;
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(10000);
    expect(c.highestNormalView()).toBeGreaterThanOrEqual(1);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
  }, 120_000);
});
