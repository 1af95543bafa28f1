/**
 * One bench trial's lifecycle (src/bench/trial.ts Bench.trial) on a
 * RECORDING FAKE LAB: a fake provider behind the real lab handle (OpenLab),
 * so nothing runs. It answers like a healthy lab (el-loader attach JSON, a
 * committing probe, a client result line) and records every operation the
 * trial asks of the lab, in order. The same trial on a real netns lab is
 * test/root/bench.netns.test.ts; this one says what happens when, and that a
 * failure in the middle still stops what was started.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Bench } from '../../src/bench/trial.js';
import { LoggingRunner } from '../../src/bench/store.js';
import { parseNemesisEntry, NemesisSpec } from '../../src/bench/nemesis.js';
import { ArmName, BenchOptions, Trial } from '../../src/bench/types.js';
import { LabPaths, RunPaths } from '../../src/edges/paths.js';
import { NO_FACTS, Plan, PlanNode, planFromInputs } from '../../src/core/plan.js';
import { QuietProgress } from '../../src/edges/progress.js';
import { openLab } from '../../src/providers/lab.js';
import type { NodeFaults, ProcessRecord, Provider, ProviderContext } from '../../src/providers/provider.js';
import { RecordingRunner, RunResult } from '../../src/edges/runner.js';

const home = mkdtempSync(join(tmpdir(), 'el-unit-trial-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

const BINS = { replica: '/fake/replica', client: '/fake/client', echo: '/fake/echo', forge: '/fake/forge' };

const attachJson = JSON.stringify({ ifname: 'eth0', ifindex: 2, xdp_mode: 'none', index: 0, n: 3, f: 1, enabled: 'reply', loaded: 'broadcast,quorum,reply', objects: [{ object: 'el_reply', loaded: true }] });
const clientJson = JSON.stringify({ kind: 'electrode-client-result', requests: 500, completed: 500, errors: 0, timeouts: 0, threads: 1, warmup_s: 0, duration_s: 0.3, throughput_ops: 1666, latency_us: { p50: 100, p90: 150, p95: 170, p99: 200 } });

/** One operation the trial asked of the lab. */
interface Op {
  op: string;
  node: string;
}

/** What an exec is, by its argv (src/core/argv.ts builds them). */
function kindOf(argv: string[]): string {
  if (argv.some((a) => a.endsWith('el-loader')) && argv.includes('attach')) return 'attach';
  if (argv.some((a) => a.endsWith('el-loader')) && argv.includes('detach')) return 'detach';
  if (argv.includes(BINS.client)) return argv.includes('--key-prefix') ? 'probe' : 'client';
  if (argv[0] === 'sh' && argv[2]?.includes('schedstat')) return 'cpu-sample';
  return 'look';
}

/**
 * The fake provider: answers like a healthy lab, records everything.
 * `client` decides what the measuring client's exec does (the trial runs
 * the nemesis while it is pending).
 */
function recordingProvider(client: (ops: Op[]) => Promise<Partial<RunResult>>, attachStdout: string): { provider: Provider; ops: Op[] } {
  const ops: Op[] = [];
  let pid = 1000;
  const ok = (argv: string[], r: Partial<RunResult> = {}): RunResult => ({ argv, exitCode: 0, signal: null, durationMs: 1, stdout: '', stderr: '', ...r });
  const faults: NodeFaults = {
    signal: async (_p, rec, sig) => void ops.push({ op: `signal ${sig}`, node: rec.node }),
    isolate: async (_p, node, on) => void ops.push({ op: on ? 'isolate' : 'heal', node: node.name }),
    netem: async (_p, node, spec) => void ops.push({ op: spec ? 'impair' : 'unimpair', node: node.name }),
    canReorder: async () => true,
  };
  const provider: Provider & { faults: NodeFaults } = {
    name: 'netns',
    startTimeoutMs: 2_000,
    sharedKernel: true,
    ingressHook: 'tc',
    faults,
    probe: async () => [],
    up: async () => undefined,
    down: async () => undefined,
    status: async () => [],
    exec: async (_p: Plan, node: PlanNode, argv: string[]) => {
      const k = kindOf(argv);
      ops.push({ op: k, node: node.name });
      if (k === 'attach') return ok(argv, { stdout: attachStdout + '\n' });
      if (k === 'client') return ok(argv, await client(ops));
      if (k === 'cpu-sample') return ok(argv, { exitCode: 1 });
      return ok(argv);
    },
    spawn: async (_p: Plan, node: PlanNode, name: string, argv: string[]): Promise<ProcessRecord> => {
      ops.push({ op: 'spawn', node: node.name });
      return { node: node.name, name, pid: pid++, argv, logFile: join(home, 'logs', `${node.name}.${name}.log`) };
    },
    alive: async (_p: Plan, rec: ProcessRecord) => (ops.push({ op: 'alive?', node: rec.node }), true),
    udpBound: async (_p: Plan, node: PlanNode) => (ops.push({ op: 'bound?', node: node.name }), true),
    stop: async (_p: Plan, rec: ProcessRecord) => void ops.push({ op: 'stop', node: rec.node }),
    // a log pulled whole into the run folder (a size cap given) is gathering; a file read for a decision (the nemesis' leader) is not
    copyOut: async (_p: Plan, node: PlanNode, _remote: string, _local: string, _ctx: ProviderContext, maxBytes?: number) => (ops.push({ op: maxBytes !== undefined ? 'pull' : 'read', node: node.name }), false),
    collect: async (_p: Plan, node: PlanNode) => void ops.push({ op: 'collect', node: node.name }),
  };
  return { provider, ops };
}

function setup(client: (ops: Op[]) => Promise<Partial<RunResult>>, nemesis: NemesisSpec[] = [], attachStdout = attachJson) {
  const plan = planFromInputs([{ name: 'tl', replicas: 3 }], NO_FACTS);
  const ctx: ProviderContext = { runner: new RecordingRunner(), paths: new LabPaths(home, 'tl'), progress: new QuietProgress() };
  const { provider, ops } = recordingProvider(client, attachStdout);
  const lab = openLab(provider, plan, ctx);
  const run = new RunPaths(join(home, 'runs'), `t${Math.random().toString(36).slice(2, 8)}`);
  run.ensureDirs();
  const opts: BenchOptions & { nemesis: NemesisSpec[]; check: boolean } = {
    lab: 'tl', replicas: [3], arms: ['reply'], threads: [1], repeat: 1, duration: 0.3, warmup: 0, stopOnCrash: false, keepLab: true, timeoutMs: 10_000, nemesis, check: false,
  };
  const deps = { env: {}, home, runner: ctx.runner, progress: ctx.progress, getProvider: () => provider };
  const bench = new Bench(opts, deps, run, new LoggingRunner(ctx.runner, run.commandsLog), BINS);
  bench.env.labs['3'] = { plan, nodes: {}, arms: {} };
  return { bench, lab, ops };
}

const trial = (arm: ArmName, nemesis = 'none'): Trial => ({ seq: 0, replicas: 3, arm, threads: 1, repeat: 0, nemesis });

/** The trial's phases in the order their first operation came. */
function phases(ops: Op[]): string[] {
  const phaseOf = (o: Op): string | undefined =>
    o.op === 'attach' ? 'attach'
      : o.op === 'spawn' ? 'start replicas'
        : o.op === 'bound?' || o.op === 'probe' ? 'wait ready'
          : o.op === 'client' ? 'client'
            : o.op === 'isolate' || o.op === 'heal' ? 'fault'
              : o.op === 'stop' ? 'stop'
                : o.op === 'pull' ? 'gather'
                  : undefined;
  const out: string[] = [];
  for (const o of ops) {
    const p = phaseOf(o);
    if (p && out.at(-1) !== p && !out.includes(p)) out.push(p);
  }
  return out;
}

const firstIndex = (ops: Op[], op: string) => ops.findIndex((o) => o.op === op);
const lastIndex = (ops: Op[], op: string) => ops.map((o) => o.op).lastIndexOf(op);

describe('one bench trial on a recording fake lab (fake provider behind the real OpenLab; nothing runs)', () => {
  it('attach, start replicas, wait ready, client, fault (while the client runs), stop, gather: in that order, each replica once', async () => {
    // the client runs until the nemesis has healed its partition, as a real client outlasts the fault window
    const { bench, lab, ops } = setup(async (seen) => {
      const deadline = Date.now() + 5_000;
      while (!seen.some((o) => o.op === 'heal') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      return { stdout: clientJson + '\n' };
    }, [parseNemesisEntry('partition:follower') as NemesisSpec]);
    const rec = await bench.trial(trial('reply', 'partition:follower'), lab);

    expect(rec.error).toBeUndefined();
    expect(rec.status).toBe('ok');
    expect(rec.completed).toBe(500);
    expect(phases(ops)).toEqual(['attach', 'start replicas', 'wait ready', 'client', 'fault', 'stop', 'gather']);
    // every arm starts clean: detach before attach, and detach again after the replicas stopped
    expect(firstIndex(ops, 'detach')).toBeLessThan(firstIndex(ops, 'attach'));
    expect(lastIndex(ops, 'detach')).toBeGreaterThan(lastIndex(ops, 'stop'));
    const on = (op: string) => ops.filter((o) => o.op === op).map((o) => o.node);
    expect(on('attach')).toEqual(['replica0', 'replica1', 'replica2']);
    expect(on('spawn')).toEqual(['replica0', 'replica1', 'replica2']);
    expect(on('stop')).toEqual(['replica0', 'replica1', 'replica2']);
    expect(on('client')).toEqual(['client0']);
    // the fault hit one follower, inside the client's run, and was healed before the stop
    expect(on('isolate')).toEqual(['replica1']);
    expect(on('heal')).toEqual(['replica1']);
    expect(firstIndex(ops, 'isolate')).toBeGreaterThan(firstIndex(ops, 'client'));
    expect(lastIndex(ops, 'heal')).toBeLessThan(firstIndex(ops, 'stop'));
    expect(rec.fault?.targets).toEqual(['replica1']);
    expect(rec.fault?.healedAt).toBeGreaterThanOrEqual(rec.fault!.injectedAt!);
  });

  it('a failure in the middle (the client node fails) still stops every replica it started and detaches', async () => {
    const { bench, lab, ops } = setup(async () => {
      throw new Error('ssh: connection to client0 lost');
    });
    const rec = await bench.trial(trial('reply'), lab);

    expect(rec.status).toBe('failed');
    expect(rec.error).toMatch(/connection to client0 lost/);
    expect(phases(ops)).toEqual(['attach', 'start replicas', 'wait ready', 'client', 'stop', 'gather']);
    expect(ops.filter((o) => o.op === 'stop').map((o) => o.node)).toEqual(['replica0', 'replica1', 'replica2']);
    expect(lastIndex(ops, 'detach')).toBeGreaterThan(lastIndex(ops, 'stop'));
  });

  it('a failure before anything started (attach refused) starts nothing and still detaches', async () => {
    // the kernel refuses the arm: attach reports reply not loaded
    const { bench, lab, ops } = setup(async () => ({ stdout: clientJson + '\n' }), [], attachJson.replace('broadcast,quorum,reply', 'broadcast,quorum'));
    const rec = await bench.trial(trial('reply'), lab);

    expect(rec.status).toBe('failed');
    expect(rec.error).toMatch(/arm 'reply' cannot run on this kernel/);
    expect(ops.filter((o) => o.op === 'spawn' || o.op === 'client' || o.op === 'stop')).toEqual([]);
    expect(lastIndex(ops, 'detach')).toBeGreaterThan(lastIndex(ops, 'attach'));
  });
});
