/**
 * Shared by the bpf tests: a real netns lab (the netns provider), the
 * packet tool bpf/tests/elpkt.py run inside the lab's namespaces, and the
 * loader. Traffic only ever goes to addresses inside the lab's namespaces.
 */
import { execa, ResultPromise } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { LabPaths, projectRoot } from '../../src/edges/paths.js';
import { clients, Plan, PlanNode, planLab, replicas } from '../../src/core/plan.js';
import { QuietProgress } from '../../src/edges/progress.js';
import { NetnsProvider, nsenterArgv } from '../../src/providers/netns.js';
import { ProviderContext } from '../../src/providers/provider.js';
import { ExecaRunner } from '../../src/edges/runner.js';
import { normalizeSpec } from '../../src/core/spec.js';
import { saveLabFiles } from '../../src/edges/state.js';
import { ProviderLauncher, TestCluster } from './cluster.js';

export const ROOT = projectRoot();
export const LOADER = join(ROOT, 'bpf', 'build', 'el-loader');
export const ASAN_LOADER = join(ROOT, 'bpf', 'build', 'asan', 'el-loader');
export const ELPKT = join(ROOT, 'bpf', 'tests', 'elpkt.py');
export const SENTINEL = 999_999;

export const isRoot = process.getuid?.() === 0;

export interface TestLab {
  plan: Plan;
  paths: LabPaths;
  provider: NetnsProvider;
  ctx: ProviderContext;
  home: string;
  r: PlanNode[];
  down(): Promise<void>;
}

/** Ups a real netns lab with a unique name in a throw-away ELECTRODE_LAB_HOME. */
export async function upLab(tag: string, n: number): Promise<TestLab> {
  const home = mkdtempSync(join(tmpdir(), 'el-bpf-'));
  const name = `bt${tag}${process.pid % 10000}`;
  const { spec, diagnostics } = normalizeSpec({ name, replicas: n, clients: 1, provider: 'netns', subnet: '10.231.0.0/24' });
  if (!spec) throw new Error(diagnostics.map((d) => d.message).join('; '));
  const { plan } = planLab(spec);
  if (!plan) throw new Error('plan failed');
  const paths = new LabPaths(home, name);
  saveLabFiles(paths, plan);
  const provider = new NetnsProvider();
  const ctx: ProviderContext = { runner: new ExecaRunner(), paths, progress: new QuietProgress() };
  await provider.down(plan, ctx);
  await provider.up(plan, ctx);
  return {
    plan,
    paths,
    provider,
    ctx,
    home,
    r: replicas(plan),
    async down() {
      await provider.down(plan, ctx);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Runs a command inside a node; never throws, returns the result. */
export async function inNode(node: PlanNode, argv: string[], env?: Record<string, string>) {
  const [file, ...args] = nsenterArgv(node.netns, argv);
  return execa(file!, args, { reject: false, env, timeout: 30_000 });
}

export async function loader(node: PlanNode, args: string[]) {
  return inNode(node, [LOADER, ...args]);
}

export const ep = (n: PlanNode) => `${n.mac},${n.ip},${n.port}`;
export const ipPort = (n: PlanNode) => `${n.ip},${n.port}`;

/** elpkt sender; resolves with its exit code (pinned to CPU 0 so frames keep their order). */
export async function send(node: PlanNode, args: string[]): Promise<void> {
  const r = await inNode(node, ['taskset', '-c', '0', 'python3', ELPKT, ...args]);
  if (r.exitCode !== 0) throw new Error(`elpkt ${args.join(' ')} in ${node.name}: ${r.stderr}`);
}

export interface Listener {
  /** Every JSON line the listener printed, once it stopped. */
  done: Promise<Record<string, unknown>[]>;
}

/** Starts an elpkt capture/recv in a node and resolves once it is ready to receive. */
export async function listen(node: PlanNode, args: string[]): Promise<Listener> {
  const [file, ...rest] = nsenterArgv(node.netns, ['python3', ELPKT, ...args]);
  const child: ResultPromise = execa(file!, rest, { reject: false, timeout: 30_000 });
  const lines: Record<string, unknown>[] = [];
  const rl = createInterface({ input: child.stdout! });
  let readyResolve!: () => void;
  const ready = new Promise<void>((ok) => (readyResolve = ok));
  rl.on('line', (l) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    if (o.ready) readyResolve();
    else lines.push(o);
  });
  const done = (async () => {
    const r = await child;
    await new Promise<void>((ok) => (rl.closed ? ok() : rl.once('close', () => ok())));
    if (!lines.length && r.exitCode !== 0) throw new Error(`elpkt ${args.join(' ')}: ${String(r.stderr)}`);
    return lines;
  })();
  // a listener that dies before it is ready must fail the test, not hang it
  await Promise.race([ready, done.then(() => undefined)]);
  return { done };
}

/** Polls a condition (no fixed sleeps) until it holds or the deadline passes. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Counters {
  seen: number;
  passed: number;
  dropped: number;
  cloned: number;
  replied: number;
  fallback: number;
  full: number;
  errors: number;
}
export type Stats = Record<'dispatch' | 'broadcast' | 'quorum' | 'reply' | 'egress', Counters>;

export async function stats(node: PlanNode): Promise<Stats> {
  const r = await loader(node, ['stats', '--pin-dir', node.pinDir, '--json']);
  if (r.exitCode !== 0) throw new Error(`stats ${node.name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Stats;
}

export async function show(node: PlanNode): Promise<{ pinned: boolean; attached: { hook: string; mode: string; prog: string; current: boolean }[]; fr_state?: { view: number; last_op: number } }> {
  const r = await loader(node, ['show', '--pin-dir', node.pinDir, '--json']);
  if (r.exitCode !== 0) throw new Error(`show ${node.name}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Our replicas on a lab's nodes (one per replica node, the client on the first client node), started by the caller. */
export function labCluster(lab: TestLab, dir: string, procName: string): { launcher: ProviderLauncher; cluster: TestCluster } {
  const launcher = new ProviderLauncher(lab.provider, lab.plan, lab.ctx);
  const cluster = new TestCluster({
    dir, procName, n: lab.plan.cluster.n, f: lab.plan.cluster.f,
    addrs: lab.r.map((r) => ({ ip: r.ip, port: r.port })),
    replicaNodes: lab.r.map((r) => r.name), clientNode: clients(lab.plan)[0]!.name, launcher,
  });
  return { launcher, cluster };
}
