/** The pure parts of running upstream on a lab: variants, the scenario's names, the client's output, why a process died. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planLab } from '../../src/core/plan.js';
import { normalizeSpec } from '../../src/core/spec.js';
import { parseUpstreamClient } from '../../src/upstream/client.js';
import { STALL_RESENDS, explainUpstreamCrash, explainUpstreamStall } from '../../src/upstream/explain.js';
import { nodeMountScript } from '../../src/upstream/nodes.js';
import { inNodeArgv, mntFile } from '../../src/providers/netnsMounts.js';
import { kernelPorts, upstreamPatch, UPSTREAM_FILES, UpstreamSources } from '../../src/upstream/patch.js';
import { scenarioFacts } from '../../src/upstream/scenario.js';
import { generatedVariant, hostsFileText, replicaPorts, scenarioHosts, scenarioProblems, scenarioVariant, upstreamLabOf, userBuildKey } from '../../src/upstream/variant.js';
import { thirdPartyDir } from '../helpers/thirdParty.js';
import { existsSync } from 'node:fs';

function plan(n: number) {
  const { spec } = normalizeSpec({ name: 'upst', replicas: n, provider: 'netns', subnet: '10.79.40.0/24' });
  return planLab(spec!).plan!;
}

describe('variants', () => {
  it('arms map to both halves: TC_BROADCAST is a replica switch only; the loader runs with any fast path', () => {
    expect(generatedVariant('baseline')).toMatchObject({ id: 'baseline', userDefines: [], kernDefines: [], loader: false });
    expect(generatedVariant('broadcast')).toMatchObject({ userDefines: ['-DTC_BROADCAST'], kernDefines: [], loader: true });
    expect(generatedVariant('all')).toMatchObject({ userDefines: ['-DTC_BROADCAST', '-DFAST_QUORUM_PRUNE', '-DFAST_REPLY'], kernDefines: ['-DFAST_QUORUM_PRUNE', '-DFAST_REPLY'] });
    expect(userBuildKey(generatedVariant('baseline'))).toBe('plain');
    expect(userBuildKey(generatedVariant('all'))).toBe('fast_quorum_prune+fast_reply+tc_broadcast');
  });

  it('one port for every replica: the plan\'s base port, patched into fast_kern.c', () => {
    const p = plan(5);
    const lab = upstreamLabOf(p, '/x/config.txt');
    expect(new Set(lab.replicas.map((r) => r.port))).toEqual(new Set([p.network.basePort]));
    expect(lab.replicas.map((r) => r.mac)).toEqual(p.nodes.filter((x) => x.role === 'replica').map((x) => x.mac));
    expect(replicaPorts(p, generatedVariant('all'))).toEqual([51000, 51000, 51000, 51000, 51000]);
  });
});

const SCEN = thirdPartyDir('multi-paxos-poc');
const UP = thirdPartyDir('electrode-upstream');
const rd = (d: string, f: string) => readFileSync(join(d, f), 'utf8');
const scenarioFiles = (s: string) => ({ compose: rd(join(SCEN, s), 'docker-compose.yaml'), config: rd(join(SCEN, s), 'config.txt'), fastUser: rd(join(SCEN, s), 'fast_user.c'), fastCommon: rd(join(SCEN, s), 'fast_common.h'), dockerfile: rd(join(SCEN, s), 'Dockerfile') });

describe.skipIf(!existsSync(SCEN) || !existsSync(UP))(`the course scenarios (${existsSync(SCEN) ? 'snapshot present' : `needs ${SCEN}`})`, () => {
  it('scenario7 is the broadcast arm as its Dockerfile built it, on its own ports, names resolved to the nodes that play them', () => {
    const facts = scenarioFacts(scenarioFiles('scenario7'));
    const v = scenarioVariant(facts);
    expect(v).toMatchObject({ id: 'scenario-broadcast', arm: 'broadcast', values: 'scenario', userDefines: ['-DTC_BROADCAST'], kernDefines: ['-DTC_BROADCAST'], loader: true });
    const p = plan(7);
    expect(replicaPorts(p, v, facts)).toEqual([10001, 10002, 10003, 10004, 10005, 10006, 10007]);
    const hosts = scenarioHosts(p, facts);
    expect(hosts.find((h) => h.host === 'replica1')).toEqual({ host: 'replica1', ip: '10.79.40.10', node: 'replica0' });
    expect(hosts.find((h) => h.host === 'replica7')?.node).toBe('replica6');
    expect(hostsFileText(hosts)).toMatch(/^127\.0\.0\.1\tlocalhost\n/);
    expect(scenarioProblems(p, facts)).toEqual([]);
    expect(scenarioProblems(plan(5), facts)[0]).toMatch(/7 replicas, the lab 5/);
  });

  it('values: false keeps the scenario\'s values and bugs and makes only the toolchain edits', () => {
    const s = scenarioFiles('scenario7');
    const src: UpstreamSources = { [UPSTREAM_FILES.config]: s.config, [UPSTREAM_FILES.user]: s.fastUser, [UPSTREAM_FILES.common]: s.fastCommon, [UPSTREAM_FILES.kern]: rd(UP, 'xdp-handler/fast_kern.c') };
    const r = upstreamPatch(src, upstreamLabOf(plan(7), '/x/config.txt'), { values: false });
    expect(r.files[UPSTREAM_FILES.config]).toBe(s.config);
    expect(r.files[UPSTREAM_FILES.common]).toBe(s.fastCommon);
    expect(kernelPorts(r.files[UPSTREAM_FILES.kern]!)).toEqual([12345, 12345]);
    const user = r.files[UPSTREAM_FILES.user]!;
    expect(user).toContain('"%x:%x:%x:%x:%x:%x"');
    expect(user).toContain('fopen("./config.txt", "r")');
    expect(user).toContain('02:42:ac:13:00:02');
    expect(user).toContain('bpf_object__find_program_by_name');
    expect(user).not.toContain('bpf_object__load_xattr(&load_attr)');
    expect(r.edits.every((e) => !/CLUSTER_SIZE|eths|port|config path/.test(e.what))).toBe(true);
    // generated values from the same start: the scenario's values go
    const g = upstreamPatch(src, upstreamLabOf(plan(7), '/x/config.txt'));
    expect(g.files[UPSTREAM_FILES.config]).toMatch(/^f 3\nreplica 10\.79\.40\.10:51000\n/);
    expect(kernelPorts(g.files[UPSTREAM_FILES.kern]!)).toEqual([51000, 51000]);
  });
});

describe('mount namespaces', () => {
  it('own bpffs by default; the shared one is a folder under the lab\'s pin root; the scenario\'s names only inside the node', () => {
    const p = plan(3);
    expect(nodeMountScript(p, { sharedBpffs: false })).toBe('mount -t bpf bpf /sys/fs/bpf');
    expect(nodeMountScript(p, { sharedBpffs: true, hostsFile: '/h' })).toBe(`mount --bind ${p.bpf.pinRoot}/upstream-shared /sys/fs/bpf && mount --bind /h /etc/hosts`);
    expect(inNodeArgv('upst', 'replica1', ['ls'], '/t')).toEqual(['nsenter', `--mount=${mntFile('upst', 'replica1')}`, '--wd=/t', '--', 'ls']);
  });
});

describe("upstream's client output", () => {
  const block = (n: number, s: string, p50: number, p99: number) =>
    [`20261201-1 1 * WarmupDone      (benchmark.cc:79):  Completed warmup period of 1 seconds with 100 requests`, `20261201-1 1 * Finish          (benchmark.cc:156): Completed ${n} requests in ${s} seconds`, '... Finished cooldown period.', `... Median latency is ${p50} ns (${p50 / 1000} us)`, `... 90th percentile latency is ${p50 + 1000} ns`, `... 95th percentile latency is ${p50 + 2000} ns`, `... 99th percentile latency is ${p99} ns`].join('\n');

  it('sums the logical clients, takes the median of medians and the largest tail, and says so', () => {
    const r = parseUpstreamClient([block(1000, '0.500000', 90_000, 300_000), block(1000, '1.000000', 110_000, 500_000), block(1000, '0.800000', 100_000, 400_000)].join('\n'), 3, 1);
    expect(r.result).toMatchObject({ completed: 3000, duration_s: 1, throughput_ops: 3000, warmup_completed: 300 });
    expect(r.result!.latency_us).toMatchObject({ p50: 100, p99: 500 });
    expect(r.note).toMatch(/median of 3 medians/);
    expect(r.problem).toBeUndefined();
  });

  it('reads a real run (3 replicas, all fast paths, -n 500)', () => {
    const real = [
      '20261101-113409-1244 12262 * WarmupDone      (benchmark.cc:79):  Completed warmup period of 0 seconds with 0 requests',
      '20261101-113409-1894 12262 * Finish          (benchmark.cc:156): Completed 500 requests in 0.064953 seconds',
      '20261101-113409-1895 12262 * CooldownDone    (benchmark.cc:91):  Finished cooldown period.',
      '20261101-113409-1895 12262 * CooldownDone    (benchmark.cc:96):  Median latency is 93950 ns (93 us)',
      '20261101-113409-1895 12262 * CooldownDone    (benchmark.cc:100): 90th percentile latency is 115603 ns (115 us)',
      '20261101-113409-1895 12262 * CooldownDone    (benchmark.cc:104): 95th percentile latency is 130304 ns (130 us)',
      '20261101-113409-1895 12262 * CooldownDone    (benchmark.cc:108): 99th percentile latency is 1225894 ns (1225 us)',
      '20261101-113409-2219 12262 * operator()      (client.cc:249):    All clients done.',
    ].join('\n');
    const r = parseUpstreamClient(real, 1, 0);
    expect(r.result).toMatchObject({ completed: 500, duration_s: 0.064953, warmup_completed: 0, latency_us: { p50: 94, p90: 115.6, p95: 130.3, p99: 1225.9 } });
    expect(Math.round(r.result!.throughput_ops)).toBe(7698);
  });

  it('a logical client that never finished is a problem; no block at all is no result', () => {
    expect(parseUpstreamClient(block(10, '1.0', 1000, 2000), 2, 0).problem).toMatch(/1 of 2 logical clients never finished/);
    const none = parseUpstreamClient('Completed warmup period of 1 seconds with 0 requests', 1, 1);
    expect(none.result).toBeNull();
    expect(none.problem).toMatch(/did not finish/);
  });
});

describe('why an upstream process died', () => {
  const base = { signal: 'SIGSEGV', topFrames: [] as string[], logTail: '', values: 'generated' as const };

  it('the dangling pointer of the view change, with the ports that set it off', () => {
    const e = explainUpstreamCrash({ ...base, process: 'upstream-replica', topFrames: ['HandleDoViewChange', 'ReceiveMessage'], logTail: 'Have not heard from leader; starting view change\nStarting view change for view 1\n', kernPorts: [12345, 12345], replicaPorts: [10001, 10002, 10003] });
    expect(e[0]).toMatch(/vr\/replica\.cc:1154-1161/);
    expect(e.some((l) => /2 view-change step/.test(l))).toBe(true);
    expect(e.some((l) => /port\(s\) 10001,10002,10003 but fast_kern.c only handles 12345/.test(l))).toBe(true);
  });

  it("the shared bpffs: the second loader's pin assert", () => {
    const log = "fast: xdp-handler/fast_user.c:320: main: Assertion `bpf_obj_pin(map_prepare_buffer_fd, \"/sys/fs/bpf/paxos_prepare_buffer\") == 0' failed.";
    expect(explainUpstreamCrash({ ...base, process: 'upstream-fast', signal: 'SIGABRT', logTail: log, sharedBpffs: true })[0]).toMatch(/already pinned, by ANOTHER node's loader/);
    expect(explainUpstreamCrash({ ...base, process: 'upstream-fast', signal: 'SIGABRT', logTail: log })[0]).toMatch(/killed before it unpinned/);
  });

  it('a NULL MAC entry, a verifier refusal, and nothing known', () => {
    expect(explainUpstreamCrash({ ...base, process: 'upstream-fast', topFrames: ['__GI___isoc99_sscanf', 'main'] })[0]).toMatch(/eths\[\]/);
    expect(explainUpstreamCrash({ ...base, process: 'upstream-fast', signal: null, logTail: "libbpf: prog 'HandleRequest_main': failed to load: -7\nBPF program is too large. Processed 1000001 insn\n" })[0]).toMatch(/verifier refused/);
    expect(explainUpstreamCrash({ ...base, process: 'upstream-replica', topFrames: ['foo', 'bar'] })).toEqual(['no known upstream failure class matched SIGSEGV in foo <- bar: read backtrace.txt (gdb, crashing thread first) and log.tail']);
  });
});

describe("why upstream's client got no replies", () => {
  // the leader's lines as upstream's replica writes them (a stalled all-arm trial of this lab)
  const resend = (k: number) => Array.from({ length: k }, (_, i) => `20261101-1342${String(i).padStart(2, '0')}-0875 05345 * ResendPrepare   (replica.cc:480):   [0] Resending prepare`).join('\n');

  it('a leader resending one Prepare with the quorum prune on: the bitset that is never cleared for the same op', () => {
    const e = explainUpstreamStall(`${resend(121)}\n... HandleRequest (replica.cc:657): [0] Received duplicate request but no reply available; ignoring\n`, ['-DFAST_QUORUM_PRUNE', '-DFAST_REPLY']);
    expect(e).toMatch(/resent a Prepare 121 times/);
    expect(e).toMatch(/fast_kern\.c:284-287/);
    expect(e).toMatch(/fast_kern\.c:456-465/);
  });

  it('without the quorum prune it says only what the log shows; a few resends are ordinary loss recovery', () => {
    expect(explainUpstreamStall(resend(STALL_RESENDS), ['-DFAST_REPLY'])).toMatch(/no quorum prune in this variant/);
    expect(explainUpstreamStall(resend(STALL_RESENDS - 1), ['-DFAST_QUORUM_PRUNE'])).toBeUndefined();
    expect(explainUpstreamStall('', ['-DFAST_QUORUM_PRUNE'])).toBeUndefined();
  });
});
