/**
 * What `up --electrode-tree` and `upstream start|stop` do on a lab that is
 * up, and one upstream trial (the bench's unit). Every upstream process
 * runs under the same crash capture as ours: a run folder whose cores/ the
 * kernel's core_pattern points at while the processes are watched, crash
 * folders with gdb on upstream's own binaries, log tails, the node's pins
 * and map state, the kernel's lines, and why it died (explain.ts).
 *
 * With a scenario, its files run first AS THEY ARE (config.txt with the
 * container names, its MAC table, CLUSTER_SIZE, port and build flags);
 * the run says what happened, then what electrode-lab's generated values
 * change, and the lab comes up with those.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { guardRunCores, newRunPaths, saveResults } from '../bench/store.js';
import { CrashInfo, ResultsFile, Trial, TrialRecord, UpstreamRowInfo } from '../bench/types.js';
import { CpuSample, cpuRecord, cpuSampleScript, parseCpuSample } from '../bench/cpu.js';
import { listCores } from '../edges/crash.js';
import { LabError } from '../core/diagnostics.js';
import { RunPaths } from '../edges/paths.js';
import { clients, replicas } from '../core/plan.js';
import { Progress } from '../providers/provider.js';
import { loadProcessRecords } from '../edges/state.js';
import { ClientLoad, StartedProc, UpstreamCluster, UpstreamLabHandle } from './cluster.js';
import { explainUpstreamStall, scenarioSummary } from './explain.js';
import { nodePins, sharedBpffsDir } from './nodes.js';
import { kernelPorts, upstreamPatch } from './patch.js';
import { scenarioChanges, scenarioFacts } from './scenario.js';
import { until } from '../edges/proc.js';
import { PreparedVariant, UpstreamLabState, UpstreamPaths, copySource, describeSource, loadUpstreamState, readScenario, readSources, saveUpstreamState } from './tree.js';
import { UpstreamArm, UpstreamVariant, generatedVariant, replicaPorts, scenarioProblems, scenarioVariant, upstreamLabOf } from './variant.js';

export interface StartOptions {
  tree: string;
  scenario?: string;
  /** Fast paths of the generated run (default baseline; with a scenario: the scenario's own). */
  arm?: UpstreamArm;
  sharedBpffs?: boolean;
  env: NodeJS.ProcessEnv;
  progress: Progress;
  out: (line: string) => void;
  /** Wait for another process's core capture (ELECTRODE_LAB_CORE_WAIT_S). */
  coreLockWaitMs?: number;
  /** The smoke workload after the generated start. */
  load?: Partial<ClientLoad>;
  /**
   * A course lab holds the crash explanations back (src/course/holdback.ts):
   * `hold` moves one out of its crash folder and returns the crash without
   * it (its explanationHeld is printed in place of the `why:` lines).
   */
  holdBack?: { hold: (run: RunPaths, crash: CrashInfo) => CrashInfo };
}

/** The trial's crashes with their explanations held back, when a course lab asks. */
function withHeld(rec: TrialRecord, run: RunPaths, o: StartOptions): TrialRecord {
  return o.holdBack ? { ...rec, crashes: rec.crashes.map((c) => o.holdBack!.hold(run, c)) } : rec;
}

function crashLines(c: CrashInfo, indent: string): string[] {
  return c.explanation?.length ? c.explanation.map((l) => `${indent}why: ${l}`) : c.explanationHeld ? [`${indent}why: ${c.explanationHeld}`] : [];
}

const SMOKE: ClientLoad = { requests: 500, threads: 1, warmupSec: 0, timeoutMs: 60_000 };
/**
 * A scenario run as it was: the client gets this long, and the run ends
 * AS_IS_AFTER_CRASH_MS after the first replica died (the leaders of the
 * next views, 5 s of silence apart, may follow). The crash is undefined
 * behaviour: it does not come every time, a longer window makes it likelier.
 */
const AS_IS_MS = 60_000;
const AS_IS_AFTER_CRASH_MS = 8_000;

class TrialError extends Error {}

export function rowInfo(state: UpstreamLabState, v: UpstreamVariant): UpstreamRowInfo {
  const s = state.source;
  return { tree: s.tree, ...(s.commit ? { commit: s.commit, dirty: Boolean(s.dirty) } : {}), digest: s.digest, variant: v.id, patch: state.variants[v.id]?.patch ?? '' };
}

function baseRecord(t: Trial): TrialRecord {
  return {
    ...t, status: 'ok', crashed: false, startedAt: new Date().toISOString(), wallMs: 0, requests: 0, completed: 0, errors: 0, timeouts: 0,
    duration_s: 0, throughput_ops: null, latency_us: null, clientExitCode: null, crashes: [], impl: 'upstream',
  };
}

export interface UpstreamTrialOptions {
  /** Skip the one-request probe (a scenario run as it was: its failure IS that nothing commits). */
  noProbe?: boolean;
  /** End the client AS_IS_AFTER_CRASH_MS after the first replica died (a scenario run as it was). */
  untilCrash?: boolean;
  /** Leave the processes running after a good trial (up). */
  keep?: boolean;
  /** Suffix for process names (bench trials: `.t<seq>`). */
  suffix?: string;
}

/**
 * One trial of upstream on the lab: start, ready, (probe), client, then
 * crash folders for every process that died and stop. Never throws for
 * what the processes did; the record says it.
 */
export async function upstreamTrial(cluster: UpstreamCluster, v: UpstreamVariant, prep: PreparedVariant, t: Trial, load: ClientLoad, run: RunPaths, opts: UpstreamTrialOptions = {}): Promise<{ rec: TrialRecord; started: StartedProc[] }> {
  const t0 = performance.now();
  const rec = baseRecord(t);
  rec.upstream = { ...rowInfo(cluster.state, v), ports: cluster.ports(v) };
  let started: StartedProc[] = [];
  let keep = false;
  try {
    const s = await cluster.start(v, prep, opts.suffix ?? '');
    started = s.started;
    if (s.problem) throw new TrialError(s.problem);
    const notReady = await cluster.waitReady(started);
    if (notReady) throw new TrialError(`upstream replicas ${notReady}`);
    if (!opts.noProbe) {
      const p = await cluster.probe(prep, started);
      if (p) throw new TrialError(p);
    }
    // the same CPU sample as ours (src/bench/cpu.ts): a netns lab's nodes share this host's kernel, so one sample holds every pid
    const reps = started.filter((x) => x.kind === 'upstream-replica');
    const before = await cpuSample(cluster, started);
    const t1 = performance.now();
    const ac = new AbortController();
    const clientRun = cluster.client(prep, load, ac.signal);
    let firstDead: StartedProc | undefined;
    if (opts.untilCrash) {
      let done = false;
      void clientRun.finally(() => (done = true));
      await until(async () => done || (firstDead = (await cluster.dead(reps))[0]) !== undefined, load.timeoutMs, 200);
      // an observation window, not a synchronisation: more leaders may crash in the next views
      if (firstDead && !done) await until(() => done, AS_IS_AFTER_CRASH_MS, 200);
      if (!done) ac.abort();
    }
    const c = await clientRun;
    const windowMs = performance.now() - t1;
    const after = await cpuSample(cluster, started);
    const nodeDir = run.nodeDir(clients(cluster.lab.plan)[0]!.name);
    mkdirSync(nodeDir, { recursive: true });
    writeFileSync(join(nodeDir, `upstream-client.t${t.seq}.log`), `${c.run.stdout}\n--- stderr ---\n${c.run.stderr}`);
    rec.clientExitCode = c.run.exitCode;
    const r = c.parsed.result;
    if (r) {
      Object.assign(rec, { requests: r.requests, completed: r.completed, duration_s: r.duration_s, throughput_ops: r.throughput_ops, latency_us: r.latency_us });
      if (r.warmup_completed !== undefined) rec.warmupCompleted = r.warmup_completed;
    }
    if (c.parsed.note) rec.upstream.note = c.parsed.note;
    if (r && before && after) {
      // upstream's leader of view 0 is replica 0; a view change would move it (the log says so)
      const cpu = cpuRecord({ before: [before], after: [after], windowMs, ops: r.completed + (r.warmup_completed ?? 0), leaderPid: reps.find((x) => x.node.index === 0)?.rec.pid, followerPids: reps.filter((x) => x.node.index !== 0).map((x) => x.rec.pid) });
      if (cpu) rec.cpu = cpu;
    }
    if (firstDead && ac.signal.aborted) throw new TrialError(`stopped ${AS_IS_AFTER_CRASH_MS / 1000} s after ${firstDead.node.name}'s replica died: ${r ? `${r.completed} requests completed` : 'no logical client completed'}`);
    if (c.timedOut) throw new TrialError(`upstream's client did not finish within ${load.timeoutMs / 1000} s (it has no timeout of its own and retries forever): ${r ? `${r.completed} requests completed` : 'no logical client completed'}`);
    if (c.run.signal) throw new TrialError(`upstream's client was killed by ${c.run.signal}`);
    if (c.run.exitCode !== 0) throw new TrialError(`upstream's client exited ${c.run.exitCode}: ${c.run.stderr.trim().split('\n').at(-1) ?? ''}`);
    if (!r || !(r.completed > 0)) throw new TrialError(`upstream's client output has no figures: ${c.parsed.problem ?? ''}`);
    if (c.parsed.problem) throw new TrialError(c.parsed.problem);
    keep = Boolean(opts.keep);
  } catch (e) {
    rec.status = 'failed';
    rec.error = (e as Error).message.split('\n').slice(0, 4).join(' | ');
    // a client that got no replies: say why when the leader's log shows upstream's stall
    const leader = started.find((x) => x.kind === 'upstream-replica' && x.node.index === 0);
    const stall = leader && existsSync(leader.rec.logFile) ? explainUpstreamStall(readFileSync(leader.rec.logFile, 'utf8'), v.kernDefines) : undefined;
    if (stall) {
      rec.error += ` | ${stall}`;
      rec.upstream.note = stall;
    }
  } finally {
    for (const s of await cluster.dead(started)) rec.crashes.push(await cluster.capture(run, s, v, prep));
    if (!keep || rec.crashes.length) {
      await cluster.stop(started);
      // a crash while shutting down still leaves a core
      for (const s of started) {
        if (rec.crashes.some((c) => c.pid === s.rec.pid)) continue;
        if (listCores(run.coresDir).some((c) => c.pid === s.rec.pid)) rec.crashes.push(await cluster.capture(run, s, v, prep));
      }
    }
    for (const s of started) {
      const d = run.nodeDir(s.node.name);
      mkdirSync(d, { recursive: true });
      if (existsSync(s.rec.logFile)) copyFileSync(s.rec.logFile, join(d, basename(s.rec.logFile)));
    }
    const real = rec.crashes.filter((c) => c.core || c.signal);
    if (real.length) {
      rec.crashed = true;
      rec.status = 'crashed';
    }
    rec.wallMs = Math.round(performance.now() - t0);
  }
  return { rec, started };
}

async function cpuSample(cluster: UpstreamCluster, started: StartedProc[]): Promise<CpuSample | undefined> {
  if (!cluster.open.sharedKernel) return undefined;
  const r = await cluster.open.clients()[0]!.exec(['sh', '-c', cpuSampleScript(started.map((x) => x.rec.pid))], { check: false, timeoutMs: 30_000 }).catch(() => undefined);
  const parsed = r && r.exitCode === 0 ? parseCpuSample(r.stdout) : 'failed';
  return typeof parsed === 'string' ? undefined : parsed;
}

function resultsOf(run: RunPaths, lab: string, records: TrialRecord[], n: number): ResultsFile {
  return {
    kind: 'electrode-lab-bench-results', version: 1, id: run.id, lab, createdAt: records[0]?.startedAt ?? new Date().toISOString(), finishedAt: new Date().toISOString(), outcome: 'complete',
    options: { lab, replicas: [n], arms: [...new Set(records.map((r) => r.arm))], threads: [...new Set(records.map((r) => r.threads))], repeat: 1, requests: SMOKE.requests, warmup: 0, stopOnCrash: false, keepLab: true, timeoutMs: SMOKE.timeoutMs },
    skipped: [], records,
  };
}

/** How many view-change steps each replica log of a run shows. */
export function viewChanges(logs: Record<string, string>): Record<string, number> {
  return Object.fromEntries(Object.entries(logs).map(([n, t]) => [n, (t.match(/Starting view change for view|Entering new view/g) ?? []).length]));
}

/**
 * Copies the user's tree into the lab, then (with a scenario) reproduces it
 * as it was, then brings up the generated variant and checks it commits a
 * workload. The processes of the generated variant keep running.
 */
export async function startUpstream(h: UpstreamLabHandle, o: StartOptions): Promise<{ run: RunPaths; records: TrialRecord[] }> {
  const up = new UpstreamPaths(h.paths);
  const { progress, out } = o;
  const runner = h.runner;
  if (loadProcessRecords(h.paths).some((r) => r.name.startsWith('upstream-'))) {
    throw new LabError(`upstream processes are already running in lab '${h.plan.lab}'; run \`electrode-lab upstream stop${h.plan.lab === 'lab' ? '' : ` --name ${h.plan.lab}`}\` first`, 'UPSTREAM_RUNNING');
  }
  // our replicas (`electrode-lab start`) hold the same addresses and the base port, and their eBPF the interfaces
  const ours = [];
  for (const r of loadProcessRecords(h.paths).filter((x) => x.name === 'replica')) if (await h.nodeOf(r).alive(r)) ours.push(r);
  if (ours.length) throw new LabError(`electrode-lab's own replicas are running in lab '${h.plan.lab}' (${ours.map((r) => `${r.node}:${r.pid}`).join(', ')}); run \`electrode-lab stop${h.plan.lab === 'lab' ? '' : ` --name ${h.plan.lab}`}\` first`, 'REPLICAS_RUNNING');
  const scenario = o.scenario ? { dir: o.scenario, files: readScenario(o.scenario) } : undefined;
  const facts = scenario ? scenarioFacts(scenario.files) : undefined;
  if (facts) {
    const bad = scenarioProblems(h.plan, facts);
    if (bad.length) throw new LabError(`--scenario ${o.scenario}: ${bad.join('; ')}`, 'SCENARIO_SIZE');
  }
  const source = await progress.step(`copy ${o.tree} into the lab (the tree itself is never changed)`, () => copySource(runner, up, o.tree));
  const state: UpstreamLabState = { kind: 'electrode-lab-upstream', version: 1, source, ...(scenario ? { scenario } : {}), sharedBpffs: Boolean(o.sharedBpffs), variants: {} };
  saveUpstreamState(up, state);
  out(`upstream tree: ${describeSource(source)}; copy in ${up.source}`);
  const cluster = new UpstreamCluster(h, state);

  const run = newRunPaths(h.plan.lab, o.env);
  const guard = await guardRunCores(run, { waitMs: o.coreLockWaitMs ?? 0 });
  const records: TrialRecord[] = [];
  const n = h.plan.cluster.n;
  try {
    if (scenario && facts) {
      const v = scenarioVariant(facts);
      const prep = await progress.step(`build the scenario's files as they are (${v.id}: replica ${v.userDefines.join(' ') || 'no switches'}, eBPF ${v.kernDefines.join(' ') || 'no switches'})`, () => cluster.prepare(v));
      await cluster.ensureNodes(v);
      const kp = kernelPorts(readFileSync(join(prep.dir, 'xdp-handler', 'fast_kern.c'), 'utf8'));
      out(`scenario ${o.scenario}, as it is:`);
      for (const l of scenarioSummary(facts, kp)) out(`  ${l}`);
      const load: ClientLoad = { ...SMOKE, timeoutMs: AS_IS_MS };
      const { rec } = await progress.step(`run it as the course project did: ${v.loader ? 'loaders, ' : ''}${n} replicas, the client for at most ${AS_IS_MS / 1000} s (${AS_IS_AFTER_CRASH_MS / 1000} s after a replica dies)`, () =>
        upstreamTrial(cluster, v, prep, { seq: 0, replicas: n, arm: v.arm, threads: 1, repeat: 0, nemesis: 'none' }, load, run, { noProbe: true, untilCrash: true }),
      ).then((t) => ({ ...t, rec: withHeld(t.rec, run, o) }));
      records.push(rec);
      saveResults(run, resultsOf(run, h.plan.lab, records, n));
      const logs = Object.fromEntries(replicas(h.plan).map((r) => [r.name, readOr(join(run.nodeDir(r.name), 'upstream-replica.log'))]));
      const vc = viewChanges(logs);
      out(`what happened: ${rec.status}${rec.error ? ` - ${rec.error}` : ''}; ${rec.completed} requests completed; view-change steps per replica: ${Object.entries(vc).map(([k, x]) => `${k} ${x}`).join(', ')}`);
      for (const c of rec.crashes) {
        out(`  crash: ${c.node} ${c.process} ${c.signal ?? 'died'} in ${c.topFrames.slice(0, 4).join(' <- ') || '?'} -> ${join(run.root, c.dir)}`);
        for (const l of crashLines(c, '    ')) out(l);
      }
      if (!rec.crashes.length) out(`  no process crashed within ${AS_IS_MS / 1000} s this time: the segfault is undefined behaviour (a pointer into a copy that is gone), it comes in most runs, not in every one; run it again to catch it`);
      // the scenario's files as they ran (toolchain edits made) -> what electrode-lab writes into them for this lab
      const asIs = readSources(prep.dir);
      const generated = upstreamPatch(asIs, upstreamLabOf(h.plan, up.config(v.arm)));
      const changes = scenarioChanges(facts, upstreamLabOf(h.plan, up.config(v.arm)), kp);
      const report = [
        `scenario ${o.scenario} on lab '${h.plan.lab}', run ${run.id}`,
        ...scenarioSummary(facts, kp),
        '',
        `what happened (as it is): ${rec.status}${rec.error ? ` - ${rec.error}` : ''}; ${rec.completed} requests completed`,
        `view-change steps per replica: ${JSON.stringify(vc)}`,
        ...rec.crashes.flatMap((c) => [`crash ${c.node} ${c.process} ${c.signal ?? 'died'}: ${c.topFrames.slice(0, 6).join(' <- ')}`, ...crashLines(c, '  ')]),
        '',
        "what electrode-lab's generated values change, and why it mattered:",
        ...changes.map((l) => `- ${l}`),
        '',
        'the edits, file by file:',
        ...generated.edits.map((e) => `- ${e.file}: ${e.what}`),
      ];
      writeFileSync(join(run.root, 'scenario.txt'), report.join('\n') + '\n');
      writeFileSync(join(run.root, 'scenario-to-generated.diff'), generated.diff);
      out("what electrode-lab's generated values change:");
      for (const l of changes) out(`  - ${l}`);
      out(`  (the whole diff: ${join(run.root, 'scenario-to-generated.diff')}; summary ${join(run.root, 'scenario.txt')})`);
      copyFileSync(prep.dir + '/patch.diff', join(run.root, `patch.${v.id}.diff`));
    }
    const arm = o.arm ?? (facts ? scenarioVariant(facts).arm : 'baseline');
    const v = generatedVariant(arm);
    const prep = await progress.step(`build the generated variant ${v.id} (replica ${v.userDefines.join(' ') || 'no switches'}, eBPF ${v.kernDefines.join(' ') || 'no switches'})`, () => cluster.prepare(v));
    copyFileSync(join(prep.dir, 'patch.diff'), join(run.root, `patch.${v.id}.diff`));
    await cluster.ensureNodes(v);
    const load: ClientLoad = { ...SMOKE, ...o.load };
    const { rec } = await progress.step(`start upstream (${v.id}) on ${n} replicas and commit ${load.requests} requests`, () =>
      upstreamTrial(cluster, v, prep, { seq: records.length, replicas: n, arm: v.arm, threads: load.threads, repeat: 0, nemesis: 'none' }, load, run, { keep: true }),
    ).then((t) => ({ ...t, rec: withHeld(t.rec, run, o) }));
    records.push(rec);
    if (rec.status === 'ok') {
      state.running = v.id;
      saveUpstreamState(up, state);
    }
    out(`upstream ${v.id}: ${rec.status}: ${rec.completed} requests committed${rec.throughput_ops ? `, ${Math.round(rec.throughput_ops)} ops/s, p50 ${rec.latency_us?.p50} us` : ''}${rec.error ? ` - ${rec.error}` : ''}`);
    for (const c of rec.crashes) {
      out(`  crash: ${c.node} ${c.process} ${c.signal ?? 'died'} in ${c.topFrames.slice(0, 4).join(' <- ') || '?'} -> ${join(run.root, c.dir)}`);
      for (const l of crashLines(c, '    ')) out(l);
    }
    out(`patch applied to the copy: ${join(prep.dir, 'patch.diff')} (and in the run folder ${run.root})`);
  } finally {
    guard.restore();
    guard.dispose();
    saveResults(run, resultsOf(run, h.plan.lab, records, n));
    if (!listCores(run.coresDir).length) rmSync(run.coresDir, { recursive: true, force: true });
  }
  return { run, records };
}

const readOr = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');

/** Stops every upstream process of the lab (replicas, then loaders) and removes the nodes' mount namespaces. */
export async function stopUpstream(h: UpstreamLabHandle): Promise<string[]> {
  const recs = loadProcessRecords(h.paths).filter((r) => r.name.startsWith('upstream-'));
  const order = [...recs.filter((r) => r.name.startsWith('upstream-replica')), ...recs.filter((r) => !r.name.startsWith('upstream-replica'))];
  const lines: string[] = [];
  const open = h;
  for (const r of order) {
    const node = open.nodeOf(r);
    const alive = await node.alive(r);
    await node.stop(r);
    lines.push(`${r.node}: ${r.name} pid ${r.pid} ${alive ? 'stopped' : 'had already exited'}`);
  }
  // the loaders' native XDP needed the switch side's pass-through program (afterAttach); take it away again
  if (recs.some((r) => r.name.startsWith('upstream-fast'))) for (const n of open.replicas()) await n.afterDetach().catch(() => undefined);
  await h.destroyNodeMounts();
  const up = new UpstreamPaths(h.paths);
  const st = loadUpstreamState(up);
  if (st) {
    delete st.running;
    saveUpstreamState(up, st);
    if (st.sharedBpffs) await h.runner.run(['rm', '-rf', '--one-file-system', sharedBpffsDir(h.plan)], { check: false });
  }
  return lines;
}

export interface UpstreamNodeStatus {
  node: string;
  bpffs: 'own' | 'shared' | 'none';
  pins: string[];
}

/** What `status` adds for a lab running upstream: the tree, the variant, and each node's pins. */
export async function upstreamStatus(h: UpstreamLabHandle): Promise<{ source: string; running?: string; port?: string; sharedBpffs: boolean; nodes: UpstreamNodeStatus[] } | undefined> {
  const up = new UpstreamPaths(h.paths);
  const st = loadUpstreamState(up);
  if (!st) return undefined;
  const nodes: UpstreamNodeStatus[] = [];
  for (const n of replicas(h.plan)) {
    const pins = await nodePins(h, n);
    nodes.push({ node: n.name, bpffs: pins === undefined ? 'none' : st.sharedBpffs ? 'shared' : 'own', pins: pins ?? [] });
  }
  const v = st.running ? (st.running.startsWith('scenario-') && st.scenario ? scenarioVariant(scenarioFacts(st.scenario.files)) : generatedVariant(st.running as UpstreamArm)) : undefined;
  const ports = v ? [...new Set(replicaPorts(h.plan, v, st.scenario ? scenarioFacts(st.scenario.files) : undefined))] : [];
  return { source: describeSource(st.source), ...(st.running ? { running: st.running } : {}), ...(ports.length ? { port: ports.join(',') } : {}), sharedBpffs: st.sharedBpffs, nodes };
}

export function formatUpstreamStatus(s: NonNullable<Awaited<ReturnType<typeof upstreamStatus>>>): string[] {
  return [
    `upstream: ${s.source}; ${s.running ? `running ${s.running}${s.port ? ` on UDP port ${s.port} (upstream's replicas all use the port its eBPF compares with, not the PORT column)` : ''}` : 'not running'}; bpffs ${s.sharedBpffs ? 'ONE shared by every node (--upstream-shared-bpffs)' : 'one per node (own mount namespace)'}`,
    ...s.nodes.map((n) => `  ${n.node}: ${n.bpffs === 'none' ? 'no mount namespace' : `${n.bpffs} bpffs, pinned: ${n.pins.join(' ') || '(nothing)'}`}`),
  ];
}
