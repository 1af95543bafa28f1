/**
 * Upstream Electrode (the snapshot of the authors' tree) on real netns labs,
 * through the CLI a user types: real builds of a copy, real loaders and
 * replicas in each node's own network and mount namespace, upstream's own
 * client. Root, the snapshots and the build tools are needed; without them
 * the tests skip and say which.
 *
 *   default: up 3 --upstream-arm all, a tree the verifier refuses (the
 *   refusal in the output), quorum and reply on 5 replicas (one after
 *   the other, `upstream stop/start`), the shared-bpffs mistake on
 *   purpose, lab 04 end to end (scenario7 as it was: the course crash,
 *   captured and explained; then generated; the check; reset), bench
 *   --impl ours,upstream on 3 replicas.
 *   ELECTRODE_LAB_UPSTREAM_LONG=1: every arm on 3, 5 and 7 replicas and a
 *   bench over 3,5,7.
 *
 *   flock /work/.heavy.lock npx vitest run test/root/upstream.netns.test.ts
 */
import { execa } from 'execa';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, IS_ROOT, ROOT, leftovers } from '../helpers/netns.helpers.js';
import { thirdPartyDir } from '../helpers/thirdParty.js';
import { which } from '../../src/edges/probe.js';
import { treeDigest } from '../../src/upstream/tree.js';
import { mntDir } from '../../src/providers/netnsMounts.js';
import { UPSTREAM_ARMS } from '../../src/upstream/variant.js';
import { nodeMac } from '../../src/core/plan.js';

const TREE = thirdPartyDir('electrode-upstream');
const SCEN = thirdPartyDir('multi-paxos-poc');
const has = (tool: string) => which(tool) !== undefined;
const TOOLS = ['g++', 'protoc', 'pkg-config', 'clang', 'gcc', 'gdb', 'bpftool', 'tc', 'unshare', 'nsenter', 'stdbuf'];
const missing = [...(IS_ROOT ? [] : ['root']), ...[TREE, SCEN].filter((d) => !existsSync(d)), ...TOOLS.filter((t) => !has(t)), ...(existsSync(CLI) ? [] : [`${CLI} (npm run build)`])];
const READY = missing.length === 0;
const LONG = process.env.ELECTRODE_LAB_UPSTREAM_LONG === '1';

// named now, created in beforeAll: collecting the tests (vitest list, a skipped run) leaves nothing in /tmp
const home = join(tmpdir(), `el-upstream-home-${process.pid}`);
const runs = join(tmpdir(), `el-upstream-runs-${process.pid}`);
const env = { ELECTRODE_LAB_HOME: home, ELECTRODE_LAB_RUNS: runs, CI: 'true' };
const cli = (...args: string[]) => execa('node', [CLI, ...args], { reject: false, env, timeout: 600_000 });
const LABS = ['upst3', 'upst5', 'lab04', 'upstb'];

interface StatusJson {
  nodes: { node: string; processes: { name: string; alive: boolean }[]; bpf: string[] }[];
  upstream?: { running?: string; sharedBpffs: boolean; nodes: { node: string; bpffs: string; pins: string[] }[] };
}

async function status(lab: string): Promise<StatusJson> {
  const r = await cli('status', '--name', lab, '--json');
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as StatusJson;
}

const runOf = (stdout: string) => /run folder: (\S+)/.exec(stdout)?.[1] ?? '';

interface Results {
  records: { impl?: string; arm: string; status: string; error?: string; completed: number; throughput_ops: number | null; upstream?: { variant: string; digest: string; patch: string; ports?: number[] }; crashes: { node: string; process: string; signal: string | null; topFrames: string[]; explanation?: string[] }[] }[];
}
const results = (dir: string) => JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results;

describe.skipIf(!READY)(`upstream Electrode on netns labs (${READY ? (LONG ? 'long' : 'default') : `skipped: needs ${missing.join(', ')}`})`, () => {
  const digest = READY ? treeDigest(TREE) : '';

  beforeAll(() => {
    for (const d of [home, runs]) {
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d, { recursive: true, mode: 0o700 });
    }
  });

  afterAll(async () => {
    for (const lab of LABS) await cli('down', '--name', lab);
    for (const lab of LABS) expect(await leftovers(lab, nodeMac(lab, 'replica', 0).slice(0, 11))).toEqual([]);
    for (const lab of LABS) expect(existsSync(mntDir(lab)), `${mntDir(lab)} left`).toBe(false);
    // the user's tree was only read
    expect(treeDigest(TREE)).toBe(digest);
    rmSync(home, { recursive: true, force: true });
    rmSync(runs, { recursive: true, force: true });
  }, 300_000);

  it('up 3 --electrode-tree --upstream-arm all: the patched copy commits a workload; status shows each node\'s own pins; the patch is in the lab and run folders', async () => {
    const r = await cli('up', '3', '--provider', 'netns', '--name', 'upst3', '--subnet', '10.79.43.0/24', '--electrode-tree', TREE, '--upstream-arm', 'all');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/upstream all: ok: 500 requests committed, \d+ ops\/s/);
    const st = await status('upst3');
    expect(st.upstream?.running).toBe('all');
    expect(st.upstream?.nodes.map((n) => [n.bpffs, n.pins.sort().join(' ')])).toEqual(Array(3).fill(['own', 'FastBroadCast paxos_ctr_state paxos_prepare_buffer paxos_request_buffer']));
    for (const n of st.nodes.filter((x) => x.node.startsWith('replica'))) {
      expect(n.processes.filter((p) => p.alive).map((p) => p.name).sort()).toEqual(['upstream-fast', 'upstream-replica']);
      expect(n.bpf.join(' ')).toMatch(/xdp\(native\) fastPaxos_main.*tc egress FastBroadCast/);
    }
    const patch = readFileSync(join(home, 'labs', 'upst3', 'upstream', 'all', 'patch.diff'), 'utf8');
    expect(patch).toContain('+replica 10.79.43.10:51000');
    expect(patch).toMatch(/^\+.*htons\(51000\)/m);
    const run = runOf(r.stdout);
    expect(readFileSync(join(run, 'patch.all.diff'), 'utf8')).toBe(patch);
    const rec = results(run).records.at(-1)!;
    expect(rec).toMatchObject({ impl: 'upstream', arm: 'all', status: 'ok', completed: 500, upstream: { variant: 'all', digest } });
    // the processes keep running until `upstream stop`, which takes them and the namespaces' pins away
    const stop = await cli('upstream', 'stop', '--name', 'upst3');
    expect(stop.stdout).toMatch(/replica2: upstream-fast pid \d+ stopped/);
    expect((await status('upst3')).upstream?.nodes.every((n) => n.bpffs === 'none')).toBe(true);
    expect(existsSync(mntDir('upst3'))).toBe(false);
  }, 300_000);

  it('the shared-bpffs mistake on purpose: the second loader aborts on its pin, captured and explained', async () => {
    const r = await cli('upstream', 'start', '--name', 'upst3', '--tree', TREE, '--arm', 'all', '--shared-bpffs');
    expect(r.exitCode).toBe(1);
    const rec = results(runOf(r.stdout)).records.at(-1)!;
    expect(rec.status).toBe('crashed');
    const c = rec.crashes.find((x) => x.process === 'upstream-fast')!;
    expect(c).toMatchObject({ node: 'replica1', signal: 'SIGABRT' });
    expect(c.explanation?.[0]).toMatch(/already pinned, by ANOTHER node's loader/);
    const cr = await cli('crashes', runOf(r.stdout).split('/').at(-1)!);
    expect(cr.stdout).toMatch(/replica1 \(upstream-fast, pid \d+\) SIGABRT/);
    expect(cr.stdout).toMatch(/why: the loader aborted/);
    await cli('upstream', 'stop', '--name', 'upst3');
  }, 300_000);

  it("a kernel that refuses upstream's programs: the refusal is in the output with the verifier's words, and nothing runs", async () => {
    // a copy of the tree whose XDP entry reads the packet without a bounds check (every verifier refuses that)
    const broken = join(runs, 'broken-tree');
    cpSync(TREE, broken, { recursive: true });
    const kern = join(broken, 'xdp-handler', 'fast_kern.c');
    const text = readFileSync(kern, 'utf8');
    const at = 'void *data = (void *)(long)ctx->data;';
    expect(text).toContain(at);
    writeFileSync(kern, text.replace(at, `${at}\n\tif (*(volatile char *)(data + 200) == 1) return XDP_DROP; /* test: no bounds check */`));
    const r = await cli('upstream', 'start', '--name', 'upst3', '--tree', broken, '--arm', 'all');
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/upstream all: failed: .*upstream's loader exited/);
    expect(r.stdout).toMatch(/why: this kernel's verifier refused upstream's programs; its last lines:/);
    expect(r.stdout).toMatch(/invalid access to packet/);
    const st = await status('upst3');
    expect(st.nodes.filter((n) => n.node.startsWith('replica')).every((n) => !n.processes.some((p) => p.alive))).toBe(true);
    await cli('upstream', 'stop', '--name', 'upst3');
  }, 300_000);

  const sizes = LONG ? [3, 5, 7] : [5];
  for (const n of sizes) {
    // broadcast and all run in the other tests, baseline in the bench
    const arms = LONG ? UPSTREAM_ARMS : (['quorum', 'reply'] as const);
    it(`${n} replicas: ${arms.join(', ')} each commit a workload (or say the kernel's refusal)`, async () => {
      const lab = `upst${n}${LONG && n === 3 ? 'l' : ''}`.slice(0, 16);
      if (!LABS.includes(lab)) LABS.push(lab);
      const up = await cli('up', String(n), '--provider', 'netns', '--name', lab, '--subnet', `10.79.${44 + n}.0/24`);
      expect(up.exitCode, up.stderr).toBe(0);
      for (const arm of arms) {
        const r = await cli('upstream', 'start', '--name', lab, '--tree', TREE, '--arm', arm);
        const line = r.stdout.split('\n').find((l) => l.startsWith(`upstream ${arm}:`)) ?? r.stdout + r.stderr;
        // a kernel that refuses upstream's programs must say so with the verifier's words
        if (r.exitCode !== 0 && /verifier refused/.test(r.stdout)) expect(r.stdout).toMatch(/processed \d+ insns|failed to load/);
        else {
          expect(line, r.stdout + r.stderr).toMatch(new RegExp(`upstream ${arm}: ok: 500 requests committed`));
          expect(r.exitCode).toBe(0);
        }
        const stop = await cli('upstream', 'stop', '--name', lab);
        expect(stop.exitCode).toBe(0);
      }
    }, 600_000);
  }

  it('lab 04 end to end: scenario7 as the course project ran it (nothing commits, the next leaders crash in HandleDoViewChange, captured and explained), generated values commit, the shared bpffs aborts, the check grades, reset leaves nothing', async () => {
    const md = readFileSync(join(ROOT, 'labs', '04-upstream', 'README.md'), 'utf8');
    // README lines name the snapshots beside the project folder; here they are wherever thirdPartyDir found them
    const readme = async (line: string) => {
      expect(md, `labs/04-upstream/README.md has \`${line}\``).toContain(line);
      const args = line.split(/\s+/).slice(1).map((a) => a.replace('../shared/third_party/electrode-upstream', TREE).replace('../shared/third_party/multi-paxos-poc', SCEN));
      return cli(...args);
    };
    const start = await readme('electrode-lab lab start 04');
    expect(start.exitCode, start.stderr).toBe(0);
    // the segfault is undefined behaviour: most runs catch it (4 of the first 5 here, in 25 s windows); the README says to run again
    let r = await readme('electrode-lab upstream start --name lab04 --tree ../shared/third_party/electrode-upstream --scenario ../shared/third_party/multi-paxos-poc/scenario7');
    for (let attempt = 1; attempt < 3 && results(runOf(r.stdout)).records[0]!.crashes.length === 0; attempt++) {
      expect(r.stdout).toMatch(/no process crashed within 60 s this time/);
      expect((await readme('electrode-lab upstream stop --name lab04')).exitCode).toBe(0);
      r = await readme('electrode-lab upstream start --name lab04 --tree ../shared/third_party/electrode-upstream --scenario ../shared/third_party/multi-paxos-poc/scenario7');
    }
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const run = runOf(r.stdout);
    const [asIs, gen] = results(run).records;
    expect(asIs).toMatchObject({ impl: 'upstream', arm: 'broadcast', completed: 0, upstream: { variant: 'scenario-broadcast', ports: [10001, 10002, 10003, 10004, 10005, 10006, 10007] } });
    expect(asIs!.status).not.toBe('ok');
    // the TC program never fires on ports 10001-10007: only one follower hears each Prepare, f = 3 are needed
    expect(r.stdout).toMatch(/port 10001-10007 -> 51000: fast_kern.c only handles 12345/);
    expect(r.stdout).toMatch(/view-change steps per replica: replica0 [1-9]/);
    // the course project's segfaults: replicas leading a later view, in the view change
    expect(asIs!.crashes.length).toBeGreaterThan(0);
    // the exercise is to explain them: lab 04 holds electrode-lab's explanation back until the check passes
    for (const c of asIs!.crashes) {
      expect(c).toMatchObject({ process: 'upstream-replica', signal: 'SIGSEGV', explanationHeld: expect.stringMatching(/^held back by lab 04/) });
      expect(c.topFrames.join(' ')).toContain('HandleDoViewChange');
      expect(c.explanation).toBeUndefined();
    }
    expect(r.stdout).toMatch(/why: held back by lab 04: explain the crash from this folder/);
    expect(r.stdout).not.toMatch(/vr\/replica\.cc:1154/);
    const folder = join(run, 'crashes', readdirSync(join(run, 'crashes'))[0]!);
    for (const f of ['core', 'backtrace.txt', 'log.tail', 'dmesg.txt', 'bpf.json']) expect(existsSync(join(folder, f)), f).toBe(true);
    expect(existsSync(join(folder, 'explain.txt'))).toBe(false);
    expect(JSON.parse(readFileSync(join(folder, 'bpf.json'), 'utf8'))).toMatchObject({ bpffs: 'own', pins: expect.arrayContaining(['paxos_ctr_state']) });
    expect(readFileSync(join(run, 'scenario.txt'), 'utf8')).toMatch(/what electrode-lab's generated values change/);
    expect(readFileSync(join(run, 'scenario-to-generated.diff'), 'utf8')).toContain('-replica replica1:10001');
    expect(gen).toMatchObject({ arm: 'broadcast', status: 'ok', completed: 500, upstream: { variant: 'broadcast' } });
    const cr = await readme('electrode-lab crashes');
    expect(cr.stdout).toMatch(/why: held back by lab 04/);
    expect(cr.stdout).not.toMatch(/why: the replica died/);
    expect((await readme('electrode-lab status --name lab04')).stdout).toMatch(/replica6: own bpffs, pinned: FastBroadCast/);

    expect((await readme('electrode-lab upstream stop --name lab04')).exitCode).toBe(0);
    const sh = await readme('electrode-lab upstream start --name lab04 --tree ../shared/third_party/electrode-upstream --arm all --shared-bpffs');
    expect(sh.exitCode).toBe(1);
    const abort = results(runOf(sh.stdout)).records.at(-1)!.crashes.find((c) => c.process === 'upstream-fast')!;
    expect(abort).toMatchObject({ node: 'replica1', signal: 'SIGABRT', explanationHeld: expect.stringMatching(/^held back by lab 04/) });
    const abortTail = readFileSync(join(runOf(sh.stdout), 'crashes', `${abort.node}-${(abort as unknown as { pid: number }).pid}`, 'log.tail'), 'utf8');
    const pin = /bpf_obj_pin\([^,]+,\s*"([^"]+)"\)/.exec(abortTail)![1]!;
    expect((await readme('electrode-lab upstream stop --name lab04')).exitCode).toBe(0);

    const right = {
      as_is: {
        committed: asIs!.completed, crashed: asIs!.crashes.map((c) => c.node), signal: 'SIGSEGV', function: 'VRReplica::HandleDoViewChange', source_line: 'vr/replica.cc:1154-1161',
        kernel_port: 12345, replica_ports: '10001-10007', followers_per_prepare: 1, prepareoks_needed: 3, why_three_worked: 'with three replicas one PrepareOK is a quorum and the one follower that got the Prepare sent it',
      },
      generated: { committed: gen!.completed, port: 51000 },
      shared_bpffs: { aborted_node: abort.node, signal: 'SIGABRT', pin, why: "replica0's loader had pinned it in the same bpffs first" },
      report: { causes: 'the eBPF port 12345 never matched the scenario ports so the TC program never cloned; TC_BROADCAST sends each Prepare to one follower; no quorum, so view changes; HandleDoViewChange keeps a dangling pointer and the new leaders crashed; electrode-lab generates one port, the MACs and sizes from the plan' },
    };
    const file = join(runs, 'answers04.yaml');
    writeFileSync(file, stringify(right));
    const ok = await cli('lab', 'check', '04', '--answers', file);
    expect(ok.stdout).toMatch(/lab 04-upstream: all \d+ checks right/);
    expect(ok.exitCode).toBe(0);
    // passed: the explanations are back in their folders, and in `crashes`
    expect(ok.stdout).toMatch(/the lab held back how electrode-lab explains each crash; compare it with yours:/);
    expect(readFileSync(join(folder, 'explain.txt'), 'utf8')).toMatch(/vr\/replica\.cc:1154-1161/);
    expect((await cli('crashes', basename(run))).stdout).toMatch(/why: the replica died in VRReplica::HandleDoViewChange/);
    const abortJson = JSON.parse(readFileSync(join(runOf(sh.stdout), abort.dir, 'crash.json'), 'utf8')) as { explanation?: string[] };
    expect(abortJson.explanation?.[0]).toMatch(/already pinned, by ANOTHER node's loader/);
    writeFileSync(file, stringify({ ...right, as_is: { ...right.as_is, crashed: ['replica0'], kernel_port: 10001 } }));
    const bad = await cli('lab', 'check', '04', '--answers', file);
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toMatch(/WRONG\s+as_is\.crashed/);
    expect(bad.stdout).toMatch(/WRONG\s+as_is\.kernel_port/);
    const reset = await readme('electrode-lab lab reset 04');
    expect(reset.exitCode).toBe(0);
    expect(await leftovers('lab04', nodeMac('lab04', 'replica', 0).slice(0, 11))).toEqual([]);
    expect(existsSync(mntDir('lab04'))).toBe(false);
    expect(existsSync(run)).toBe(false);
  }, 900_000);

  it('bench --impl ours,upstream prints both side by side and says which tree and patch the upstream rows are', async () => {
    const reps = LONG ? '3,5,7' : '3';
    const r = await cli('bench', '--name', 'upstb', '--subnet', '10.79.48.0/24', '--replicas', reps, '--arms', 'baseline,all', '--threads', '1', '--repeat', '1', '--duration', '1', '--warmup', '0', '--impl', 'ours,upstream', '--electrode-tree', TREE, '--json');
    expect(r.exitCode, r.stderr.slice(-2000)).toBe(0);
    const sum = JSON.parse(r.stdout) as { dir: string; rows: { impl: string; arm: string; okRuns: number; vsOurs: number | null }[] };
    const rows = sum.rows.map((x) => `${x.impl} ${x.arm} ${x.okRuns}`);
    // a trial that did not end ok says why (results.json), so a failure here names its cause
    const trials = results(sum.dir).records;
    const notOk = trials.filter((t) => t.status !== 'ok').map((t) => `${t.impl ?? 'ours'} ${t.arm}: ${t.status}: ${t.error ?? '?'}`);
    expect(rows, notOk.join('\n')).toEqual(expect.arrayContaining(['ours baseline 1', 'upstream baseline 1', 'ours all 1']));
    // upstream's all arm can stall for good (its quorum prune drops every ack once more than a quorum acked:
    // about 1 short trial in 12 here); then the row is there, failed, and says why
    const upAll = trials.find((t) => t.impl === 'upstream' && t.arm === 'all');
    expect(upAll, notOk.join('\n')).toBeDefined();
    if (upAll!.status !== 'ok') expect(upAll!.error, notOk.join('\n')).toMatch(/never heard a quorum: its quorum prune \(xdp-handler\/fast_kern\.c:284-287\)/);
    const rep = await cli('report', sum.dir);
    expect(rep.stdout).toMatch(/impl\s+arm/);
    expect(rep.stdout).toMatch(/upstream rows .*\n\s+baseline: \S+ sha256 [0-9a-f]{12} \(no git commit\), patch \S+patch\.3r-baseline\.diff/);
    const svg = readFileSync(join(sum.dir, 'chart.svg'), 'utf8');
    expect(svg).toContain('upstream all');
  }, 900_000);
});
