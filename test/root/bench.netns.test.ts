/**
 * End to end on a real netns lab: real namespaces, real replicas and client
 * (native/build), real eBPF fast paths when the loader is built, real cores
 * and gdb. The lab is created by the bench itself under a temporary
 * ELECTRODE_LAB_HOME and taken down by it; afterAll double-checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { runBench, nativeBinaries } from '../../src/bench/run.js';
import { loaderPath } from '../../src/bench/fastpaths.js';
import { parseCsv } from '../../src/bench/csv.js';
import { BenchOptions, ResultsFile } from '../../src/bench/types.js';
import { FORGE_LIES, parseNemesisList } from '../../src/bench/nemesis.js';
import { EnvironmentFile } from '../../src/bench/environment.js';
import { CORE_PATTERN_FILE, DEFAULT_LOCK_FILE } from '../../src/edges/crash.js';
import { getProvider } from '../../src/providers/index.js';
import { QuietProgress } from '../../src/edges/progress.js';
import { ExecaRunner } from '../../src/edges/runner.js';
import { projectRoot } from '../../src/edges/paths.js';

const LAB = 'elbench';
const SUBNET = '10.93.0.0/24';
const haveLoader = existsSync(loaderPath());
const fastArm = haveLoader ? 'reply' : undefined;
const havePerf = spawnSync('perf', ['--version'], { stdio: 'ignore' }).status === 0;
/** The arms of the floor/CPU test. */
const floorArms = fastArm ? (['relay-floor', 'floor', 'baseline', 'all'] as const) : (['relay-floor', 'floor', 'baseline'] as const);
/** The floor/CPU test's run, whose profiles the --profile test checks. */
let profiled: { root: string; records: ResultsFile['records'] } | undefined;
const cli = join(projectRoot(), 'dist', 'src', 'cli.js');

let home: string;
let env: NodeJS.ProcessEnv;
/** Restored = the kernel no longer writes cores into this run, and our lock is gone. */
function expectCorePatternRestored(runRoot: string): void {
  expect(readFileSync(CORE_PATTERN_FILE, 'utf8')).not.toContain(runRoot);
  if (existsSync(DEFAULT_LOCK_FILE)) expect(readFileSync(DEFAULT_LOCK_FILE, 'utf8')).not.toContain(runRoot);
}

function opts(o: Partial<BenchOptions>): BenchOptions {
  return { lab: LAB, replicas: [3], arms: ['baseline'], threads: [1], repeat: 1, requests: 200, warmup: 0, stopOnCrash: false, keepLab: false, timeoutMs: 60_000, ...o };
}

function deps() {
  return { env, home: join(home, 'labs-home'), runner: new ExecaRunner(), progress: new QuietProgress(), getProvider, labSpec: { provider: 'netns' as const, subnet: SUBNET, basePort: 52000 }, coreLockWaitMs: 600_000 };
}

function labNamespaces(): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`el-${LAB}-`));
}

beforeAll(() => {
  for (const b of Object.values(nativeBinaries())) {
    if (!existsSync(b)) throw new Error(`${b} missing: run \`make -C native\` (npm test builds it)`);
  }
  home = mkdtempSync(join(tmpdir(), 'el-bench-'));
  env = { ...process.env, ELECTRODE_LAB_HOME: join(home, 'labs-home'), ELECTRODE_LAB_RUNS: join(home, 'runs') };
});

afterAll(async () => {
  // the bench takes its lab down itself; this only cleans up after a failed test
  if (labNamespaces().length) await execa('node', [cli, 'down', '--name', LAB], { env, reject: false });
  rmSync(home, { recursive: true, force: true });
});

describe('bench on a real netns lab', () => {
  it(`3 and 5 replicas x ${fastArm ? `baseline + ${fastArm} (eBPF loader built)` : 'baseline only (no eBPF loader: threads 1 and 2 instead)'} x 2 repeats: files, one record per combination, table`, async () => {
    const o = opts({ replicas: [3, 5], arms: fastArm ? ['baseline', fastArm] : ['baseline'], threads: fastArm ? [1] : [1, 2], repeat: 2 });
    const { run, results, report } = await runBench(o, deps());
    expect(results.outcome).toBe('complete');
    for (const f of [run.resultsJson, run.resultsCsv, run.environmentJson, run.commandsLog, run.chartSvg]) expect(existsSync(f), f).toBe(true);

    const stored = JSON.parse(readFileSync(run.resultsJson, 'utf8')) as ResultsFile;
    expect(stored.records).toHaveLength(8);
    const combos = new Set(stored.records.map((r) => `${r.replicas}/${r.arm}/${r.threads}/${r.repeat}`));
    expect(combos.size).toBe(8);
    for (const r of stored.records) {
      expect(r.status, `${r.replicas}/${r.arm}/${r.threads}: ${r.error ?? ''}`).toBe('ok');
      expect(r.completed).toBe(200);
      expect(r.throughput_ops).toBeGreaterThan(0);
      expect(r.latency_us!.p99).toBeGreaterThanOrEqual(r.latency_us!.p50);
    }
    const csv = parseCsv(readFileSync(run.resultsCsv, 'utf8'));
    expect(csv).toHaveLength(1 + 8);

    const envFile = JSON.parse(readFileSync(run.environmentJson, 'utf8')) as EnvironmentFile;
    expect(envFile.host.git.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(typeof envFile.host.git.dirty).toBe('boolean');
    expect(Object.keys(envFile.labs).sort()).toEqual(['3', '5']);
    expect(envFile.labs['5']!.plan.cluster.n).toBe(5);
    expect(envFile.labs['3']!.nodes.replica0!.kernel).toBe(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
    expect(envFile.host.build.native!.join(' ')).toMatch(/-O2|CFLAGS/);
    if (fastArm) {
      // the reply arm ran with its ingress program on every replica (XDP, or TC ingress: the netns default), on record
      const states = Object.values(envFile.labs['3']!.arms[fastArm]!);
      expect(states).toHaveLength(3);
      for (const x of states) {
        if (x.xdp.mode === 'none') expect(x.programs?.some((p) => p.startsWith('tc ingress el_tc_ingress'))).toBe(true);
        else expect(['native', 'generic']).toContain(x.xdp.mode);
      }
    }

    execFileSync('xmllint', ['--noout', run.chartSvg]);
    expect(readFileSync(run.commandsLog, 'utf8')).toMatch(/nsenter --net=\/run\/netns\/el-elbench-replica0 -- prlimit --core=unlimited/);
    expect(report).toMatch(/replicas\s+arm\s+threads/);
    // one table row per cell: 3 and 5 replicas x (baseline and reply at 1 thread, or baseline at 1 and 2 threads)
    expect(report.split('\n').filter((l) => /^\s*[35]\s+(baseline|reply)\s/.test(l))).toHaveLength(4);
    // the host is as it was: core pattern restored, the lab the bench created is gone
    expectCorePatternRestored(run.root);
    expect(labNamespaces()).toEqual([]);

    // report re-prints and re-plots the stored run
    const rep = await execa('node', [cli, 'report', run.id], { env, reject: false });
    expect(rep.exitCode, rep.stderr).toBe(0);
    expect(rep.stdout).toMatch(/replicas\s+arm\s+threads/);
    const json = await execa('node', [cli, 'report', run.id, '--json'], { env });
    expect(JSON.parse(json.stdout)).toMatchObject({ kind: 'electrode-lab-bench-summary', trials: 8, crashed: 0 });
  }, 900_000);

  it('a replica crashed on purpose (--crash-after) gets a crash folder whose backtrace names crash_on_purpose; the bench goes on to the next arm', async () => {
    const arms = fastArm ? (['baseline', fastArm] as const) : (['baseline'] as const);
    const o = opts({ replicas: [3], arms: [...arms], threads: fastArm ? [1] : [1, 2], repeat: 1, requests: 300, replicaArgsFor: { '2': ['--crash-after', '40'] } });
    const { run, results } = await runBench(o, deps());
    expect(results.outcome).toBe('complete');
    expect(results.records).toHaveLength(2); // the second trial ran after the first crashed
    for (const r of results.records) {
      expect(r.crashed, JSON.stringify(r)).toBe(true);
      expect(r.status).toBe('crashed');
      const c = r.crashes.find((x) => x.node === 'replica2');
      expect(c, JSON.stringify(r.crashes)).toBeDefined();
      expect(c!.signal).toBe('SIGSEGV');
      expect(c!.topFrames).toContain('crash_on_purpose');
      const dir = join(run.root, c!.dir);
      expect(readdirSync(dir).sort()).toEqual(['backtrace.txt', 'bpf.json', 'core', 'crash.json', 'dmesg.txt', 'log.tail', 'node']);
      // the node's state at the crash (Provider.collect): links and the TC filters on its NIC
      expect(readdirSync(join(dir, 'node')).sort()).toEqual(['ip-addr.txt', 'ip-link.txt', 'tc-egress.txt', 'tc-ingress.txt']);
      expect(readFileSync(join(dir, 'backtrace.txt'), 'utf8')).toMatch(/crash_on_purpose/);
      expect(readFileSync(join(dir, 'log.tail'), 'utf8')).toMatch(/crash/i);
      // a follower crashed: the other two replicas still form a quorum and the client finished
      expect(r.completed).toBe(300);
    }
    if (fastArm) {
      const withBpf = results.records.find((r) => r.arm === fastArm)!;
      const state = JSON.parse(readFileSync(join(run.root, withBpf.crashes[0]!.dir, 'bpf.json'), 'utf8')) as Record<string, unknown>;
      expect(state.error, JSON.stringify(state)).toBeUndefined();
    }
    expectCorePatternRestored(run.root);

    const cr = await execa('node', [cli, 'crashes'], { env, reject: false });
    expect(cr.exitCode, cr.stderr).toBe(0);
    expect(cr.stdout).toMatch(/2 crash\(es\)/);
    expect(cr.stdout).toMatch(/replica2 \(replica, pid \d+\) SIGSEGV/);
    expect(cr.stdout).toMatch(/top frames: crash_on_purpose/);
  }, 900_000);

  it('--clients 1,2: two client nodes drive one lab together; their histories are checked as one, latency from their histograms, each one on record', async () => {
    const o = opts({ replicas: [3], clients: [1, 2], arms: ['baseline'], threads: [2], requests: undefined, duration: 2, warmup: 0.5 });
    const { run, results, report } = await runBench(o, deps());
    expect(results.outcome).toBe('complete');
    const [one, two] = results.records;
    expect(one!.clients).toBeUndefined();
    expect(one!.perClient).toBeUndefined();
    expect(two!.clients).toBe(2);
    expect(two!.status, two!.error).toBe('ok');
    expect(two!.clientClock).toBe('monotonic');
    expect(two!.perClient!.map((c) => c.node)).toEqual(['client0', 'client1']);
    // both measured, and the trial's ops are theirs added up
    for (const c of two!.perClient!) expect(c.completed).toBeGreaterThan(0);
    expect(two!.completed).toBe(two!.perClient!.reduce((a, c) => a + c.completed, 0));
    // the common window is inside each client's own 2 s, and the merged p50 lies between theirs
    expect(two!.duration_s).toBeGreaterThan(1);
    expect(two!.duration_s).toBeLessThanOrEqual(2.01);
    const p50s = two!.perClient!.map((c) => c.p50);
    expect(two!.latency_us!.p50).toBeGreaterThanOrEqual(Math.min(...p50s) * 0.98);
    expect(two!.latency_us!.p50).toBeLessThanOrEqual(Math.max(...p50s) * 1.02);
    // one history of both clients: every op of both was judged
    expect(two!.safety?.verdict).toBe('linearizable');
    expect(two!.safety!.lostAcked).toBe(0);
    expect(two!.safety!.acked).toBeGreaterThanOrEqual(two!.completed);
    for (const c of ['client0', 'client1']) expect(existsSync(join(run.root, 'nodes', c, `history.t${two!.seq}.jsonl`)), c).toBe(true);
    expect(report).toMatch(/clients/);
  }, 240_000);

  it('-n counts measured requests: --requests 5000 --warmup 1 measures 5000 after the warm-up (it once reported "ok" at 0 ops/s)', async () => {
    const { results } = await runBench(opts({ requests: 5000, warmup: 1, threads: [2] }), deps());
    expect(results.outcome).toBe('complete');
    const r = results.records[0]!;
    expect(r.status, r.error).toBe('ok');
    expect(r.completed).toBe(5000);
    expect(r.warmupCompleted).toBeGreaterThan(0);
    expect(r.throughput_ops).toBeGreaterThan(0);
  }, 300_000);

  it('a nemesis per trial (kill-leader, kill-follower, pause, partition, split, loss, dup, reorder): every history linearizable, no acknowledged request lost, faults on record', async () => {
    const { specs, diagnostics } = parseNemesisList('kill-leader,kill-follower,pause,partition:follower,split,loss:5%,dup:5%,reorder:10%');
    expect(diagnostics).toEqual([]);
    const arms = fastArm ? (['baseline', 'all'] as const) : (['baseline'] as const);
    const o = opts({ replicas: [3], arms: [...arms], threads: [4], repeat: 1, requests: undefined, duration: 1.5, warmup: 0.3, nemesis: specs });
    const { run, results, report } = await runBench(o, deps());
    expect(results.outcome).toBe('complete');
    expect(results.records).toHaveLength(specs.length * arms.length);
    for (const r of results.records) {
      const what = `${r.arm}/${r.nemesis}: ${r.error ?? ''} ${JSON.stringify(r.safety)} ${JSON.stringify(r.fault)}`;
      expect(r.status, what).toBe('ok');
      expect(r.fault?.name, what).toBe(r.nemesis);
      expect(r.fault?.problem, what).toBeUndefined();
      expect(r.fault?.targets.length, what).toBeGreaterThan(0);
      // the verdict: checked, linearizable, durable, no divergence
      expect(r.safety?.verdict, what).toBe('linearizable');
      expect(r.safety!.ops, what).toBeGreaterThan(100);
      expect(r.safety!.acked, what).toBeGreaterThan(100);
      expect(r.safety!.lostAcked, what).toBe(0);
      expect(r.safety!.divergence, what).toBeUndefined();
    }
    // a killed leader: the survivors elected another one, and the time it took is on record
    for (const r of results.records.filter((x) => x.nemesis === 'kill-leader')) expect(r.fault!.recoveryMs ?? -1, `${r.arm}/kill-leader: no view change on record: ${JSON.stringify(r.fault)}`).toBeGreaterThan(0);
    // a split heals after half a second: when it heals before the majority's view change
    // completes, a follower that still hears the old leader stays with it (leader
    // stickiness) and the one that timed out rejoins, so there may be no view change at
    // all; when there is one, its time is on record (the verdict above holds either way)
    for (const r of results.records.filter((x) => x.nemesis === 'split')) {
      if (r.fault!.recoveryMs !== undefined) expect(r.fault!.recoveryMs, `${r.arm}/split`).toBeGreaterThan(0);
    }
    const log = readFileSync(run.commandsLog, 'utf8');
    expect(log).toMatch(/nemesis kill-leader: SIGKILL replica0/);
    // loss and duplication by our own TC program on the switch ports (this host kernel has no sch_netem)
    expect(log).toMatch(/el-loader impair --pin-dir \S+\/sw --ifname p-replica\d --loss 5 --dup 0/);
    expect(log).toMatch(/ip -n el-elbench-sw link set p-replica\d down/);
    expect(report).toMatch(/safety: \d+ trial histories checked .* 0 of [\d,]+ acknowledged requests lost/);
    expect(report).toMatch(/nemesis\s+recovery ms/);
    // the trial files are kept for a second look
    const client = readdirSync(join(run.root, 'nodes', 'client0'));
    expect(client.some((f) => f.startsWith('history.t'))).toBe(true);
    expect(readdirSync(join(run.root, 'nodes', 'replica1')).some((f) => f.startsWith('committed.t'))).toBe(true);
    expectCorePatternRestored(run.root);
    expect(labNamespaces()).toEqual([]);
  }, 900_000);

  it('forge: forged replica messages at every replica during the trial; linearizable, nothing lost, every lie counted as dropped where it was meant to be', async () => {
    const { specs, diagnostics } = parseNemesisList('forge');
    expect(diagnostics).toEqual([]);
    const arms = fastArm ? (['baseline', 'all'] as const) : (['baseline'] as const);
    const o = opts({ replicas: [3], arms: [...arms], threads: [4], repeat: 1, requests: undefined, duration: 1.5, warmup: 0.3, nemesis: specs });
    const { run, results, report } = await runBench(o, deps());
    expect(results.outcome).toBe('complete');
    for (const r of results.records) {
      const f = r.fault?.forge;
      const what = `${r.arm}/${r.nemesis}: ${r.error ?? ''} ${JSON.stringify(r.safety)} ${JSON.stringify(r.fault)}`;
      expect(r.status, what).toBe('ok');
      expect(r.fault?.problem, what).toBeUndefined();
      expect(r.safety?.verdict, what).toBe('linearizable');
      expect(r.safety!.acked, what).toBeGreaterThan(100);
      expect(r.safety!.lostAcked, what).toBe(0);
      expect(f, what).toBeDefined();
      expect(f!.sendErrors, what).toBe(0);
      expect(f!.uncounted, what).toBeUndefined();
      // the sender made every kind of lie, at about its rate for the 0.5 s window
      for (const k of FORGE_LIES) expect(f!.sentByLie[k], `${what} ${k}`).toBeGreaterThan(10);
      // each lie shows up in the counter meant for it (honest traffic adds little to these)
      const by = f!.droppedBy!;
      const sent = f!.sentByLie;
      expect(by['acks beyond the log'], what).toBeGreaterThanOrEqual(0.95 * sent['ack-beyond']!);
      expect(by.spoofed, what).toBeGreaterThanOrEqual(0.95 * (sent.spoofed! + sent['other-index']!));
      expect(by.malformed, what).toBeGreaterThanOrEqual(0.95 * sent['bad-entries']!);
      expect(by['leader-only messages from another replica'], what).toBeGreaterThanOrEqual(0.95 * sent['not-leader']!);
      expect(by['view claims refused']! + by['view changes not joined (leader alive)']!, what).toBeGreaterThanOrEqual(0.95 * sent['view-jump']!);
    }
    expect(readFileSync(run.commandsLog, 'utf8')).toMatch(/forge -c \S+ --view 0 --seconds 0\.500 --rate 2000/);
    expect(report).toMatch(/forged: sent [\d,]+ \/ dropped [\d,]+ by the replicas' counters, in \d trial\(s\)/);
    expect(labNamespaces()).toEqual([]);
  }, 600_000);

  it(`the floor, CPU per op and load curves in every run${havePerf ? ', run with --profile' : ''}`, async () => {
    const o = opts({ replicas: [3], arms: [...floorArms], threads: [1, 2, 4], repeat: 1, requests: undefined, duration: 1, warmup: 0.3, profile: havePerf });
    const { run, results, report } = await runBench(o, deps());
    expect(results.outcome).toBe('complete');
    expect(results.records).toHaveLength(floorArms.length * 3);
    for (const r of results.records) {
      const what = `${r.arm}/${r.threads}: ${r.error ?? ''}`;
      expect(r.status, what).toBe('ok');
      expect(r.cpu, what).toBeDefined();
      expect(r.cpu!.perOpUs, what).toBeGreaterThan(0);
      expect(r.cpu!.roles.leader, what).toBeGreaterThan(0);
      expect(r.cpu!.roles.client, what).toBeGreaterThan(0);
      expect(r.cpu!.ctxSwitchesPerOp, what).toBeGreaterThan(0);
      expect(r.cpu!.problem, what).toBeUndefined();
      if (r.arm === 'floor') {
        expect(r.safety, 'the floor has no history to check').toBeUndefined();
        expect(r.cpu!.perFollower).toEqual([]);
      } else if (r.arm === 'relay-floor') {
        expect(r.safety, 'the relay floor has no history to check').toBeUndefined();
        expect(r.cpu!.perFollower, 'replicas 1 and 2 send each request back').toHaveLength(2);
        for (const f of r.cpu!.perFollower) expect(f, what).toBeGreaterThan(0);
      } else {
        expect(r.safety?.verdict, what).toBe('linearizable');
        expect(r.cpu!.perFollower, what).toHaveLength(2);
      }
    }
    // a UDP echo is cheaper than consensus: the floor must beat the baseline
    const p50 = (arm: string, t: number) => results.records.find((r) => r.arm === arm && r.threads === t)!.latency_us!.p50;
    expect(p50('floor', 1)).toBeLessThan(p50('baseline', 1));
    expect(report).toMatch(/p50\/2 echo/);
    expect(report).toMatch(/p50\/relay/);
    expect(report).toMatch(/CPU us\/op/);
    expect(readFileSync(run.chartSvg, 'utf8')).toContain('Load curves');
    expect(readFileSync(run.commandsLog, 'utf8')).toMatch(/native\/build\/echo -l 10\.93\.0\.\d+:52000/);
    expect(readFileSync(run.commandsLog, 'utf8')).toMatch(/native\/build\/replica -c \S+ -i 1 --log-level info --relay-floor/);
    profiled = { root: run.root, records: results.records };
    if (!havePerf) expect(results.records.filter((r) => r.profile)).toEqual([]);
    expect(labNamespaces()).toEqual([]);
  }, 900_000);

  it.skipIf(!havePerf)('--profile: a flame graph per arm from a real perf capture (skipped without perf, Debian package linux-perf)', () => {
    expect(profiled, 'the floor/CPU test above ran the profiled bench and failed before it finished').toBeDefined();
    const { root, records } = profiled!;
    for (const arm of floorArms) {
      const r = records.find((x) => x.arm === arm && x.threads === 4)!;
      expect(r.profile?.problem, arm).toBeUndefined();
      expect(r.profile!.samples, arm).toBeGreaterThan(100);
      const svg = readFileSync(join(root, r.profile!.svg), 'utf8');
      expect(svg).toMatch(/^<svg /);
      // the lab's own processes are in the profile
      expect(readFileSync(join(root, r.profile!.folded), 'utf8')).toMatch(arm === 'floor' ? /^echo;/m : /^replica;/m);
    }
    expect(records.filter((r) => r.profile)).toHaveLength(floorArms.length);
  });
});
