/**
 * What one run of upstream Electrode on a lab is (pure): which fast paths
 * its two compile-time halves get, whether the loader runs, and the values
 * its files hold: the lab plan's (generated) or a course scenario's own
 * (as they are). Everything here is derived from the saved plan.
 */
import { FastPaths } from '../lab/bpf.js';
import { Plan, PlanNode, clients, replicas } from '../core/plan.js';
import { ScenarioFacts } from './scenario.js';
import { UpstreamLab } from './patch.js';

export const UPSTREAM_ARMS = ['baseline', 'broadcast', 'quorum', 'reply', 'all'] as const;
export type UpstreamArm = (typeof UPSTREAM_ARMS)[number];

export const ARM_FAST_PATHS: Record<UpstreamArm, FastPaths> = {
  baseline: { broadcast: false, quorum: false, reply: false },
  broadcast: { broadcast: true, quorum: false, reply: false },
  quorum: { broadcast: false, quorum: true, reply: false },
  reply: { broadcast: false, quorum: false, reply: true },
  all: { broadcast: true, quorum: true, reply: true },
};

export type UpstreamValues = 'generated' | 'scenario';

export interface UpstreamVariant {
  /** Folder name under the lab's upstream/ folder: `<arm>` or `scenario-<arm>` (the scenario's files as they are). */
  id: string;
  arm: UpstreamArm;
  values: UpstreamValues;
  /** -D switches of the replica (make CXXFLAGS=...). */
  userDefines: string[];
  /** -D switches of fast_kern.c (only FAST_REPLY and FAST_QUORUM_PRUNE change it; the TC program is always built). */
  kernDefines: string[];
  /** The eBPF loader runs on every replica (any fast path, or a scenario whose build had one). */
  loader: boolean;
}

function definesOf(fp: FastPaths): string[] {
  return [...(fp.broadcast ? ['-DTC_BROADCAST'] : []), ...(fp.quorum ? ['-DFAST_QUORUM_PRUNE'] : []), ...(fp.reply ? ['-DFAST_REPLY'] : [])];
}

export function generatedVariant(arm: UpstreamArm): UpstreamVariant {
  const d = definesOf(ARM_FAST_PATHS[arm]);
  return { id: arm, arm, values: 'generated', userDefines: d, kernDefines: d.filter((x) => x !== '-DTC_BROADCAST'), loader: d.length > 0 };
}

const flagsIn = (s: string | undefined) => (s ?? '').split(/\s+/).filter((x) => /^-D\w+$/.test(x));

/** The arm a scenario's Dockerfile built (its CXXFLAGS), e.g. TC_BROADCAST alone = broadcast. */
export function scenarioArm(facts: ScenarioFacts): UpstreamArm {
  const d = new Set(flagsIn(facts.build.userFlags));
  const fp = { broadcast: d.has('-DTC_BROADCAST'), quorum: d.has('-DFAST_QUORUM_PRUNE'), reply: d.has('-DFAST_REPLY') };
  return (UPSTREAM_ARMS.find((a) => JSON.stringify(ARM_FAST_PATHS[a]) === JSON.stringify(fp)) ?? 'all') as UpstreamArm;
}

/** The scenario's own build, as its Dockerfile had it (its EXTRA_CFLAGS for the eBPF side, its CXXFLAGS for the replica). */
export function scenarioVariant(facts: ScenarioFacts): UpstreamVariant {
  const arm = scenarioArm(facts);
  const user = flagsIn(facts.build.userFlags);
  const kern = flagsIn(facts.build.kernFlags);
  return { id: `scenario-${arm}`, arm, values: 'scenario', userDefines: user, kernDefines: kern, loader: user.length > 0 || kern.length > 0 };
}

/** The build folder key of a replica build: one per set of CXXFLAGS. */
export function userBuildKey(v: UpstreamVariant): string {
  const d = [...v.userDefines].sort().map((x) => x.replace(/^-D/, '').toLowerCase());
  return d.length ? d.join('+') : 'plain';
}

/**
 * The port every upstream replica of a lab binds: upstream's eBPF compares
 * with ONE constant, so all replicas share one (each node has its own IP);
 * electrode-lab takes the plan's base port and patches it into fast_kern.c.
 */
export function upstreamPort(plan: Plan): number {
  return plan.network.basePort;
}

/** The lab description patch.ts writes into the files. */
export function upstreamLabOf(plan: Plan, configPath: string): UpstreamLab {
  const port = upstreamPort(plan);
  return {
    n: plan.cluster.n,
    f: plan.cluster.f,
    replicas: replicas(plan).map((r) => ({ index: r.index, ip: r.ip, mac: r.mac, port, ifname: r.ifname })),
    configPath,
  };
}

/** What a replica of this variant binds: the plan's address and the one upstream port, or the scenario config's line. */
export function replicaPorts(plan: Plan, v: UpstreamVariant, facts?: ScenarioFacts): number[] {
  if (v.values === 'scenario' && facts) return facts.replicas.map((r) => r.port);
  return replicas(plan).map(() => upstreamPort(plan));
}

export interface HostsEntry {
  host: string;
  ip: string;
  node: string;
}

/**
 * Docker's name service, for a scenario run as it was: each container name
 * of the compose file resolves to the lab node that plays it (the replica
 * whose `-i` the container ran, the client to client0). Written into each
 * upstream node's own /etc/hosts (its mount namespace), never the host's.
 */
export function scenarioHosts(plan: Plan, facts: ScenarioFacts): HostsEntry[] {
  const out: HostsEntry[] = [];
  const reps = replicas(plan);
  const byIndex = (i: number) => reps.find((r) => r.index === i);
  const seen = new Set<string>();
  const add = (host: string, node: PlanNode | undefined) => {
    if (!node || seen.has(host)) return;
    seen.add(host);
    out.push({ host, ip: node.ip, node: node.name });
  };
  for (const s of facts.services) {
    if (s.role === 'replica' && s.index !== undefined) add(s.hostname, byIndex(s.index));
    if (s.role === 'client') add(s.hostname, clients(plan)[0]);
  }
  // config lines whose host no service names: config order is the index
  facts.replicas.forEach((r, i) => add(r.host, byIndex(i)));
  return out;
}

export function hostsFileText(entries: HostsEntry[]): string {
  return ['127.0.0.1\tlocalhost', '# electrode-lab: the scenario\'s container names, as Docker\'s DNS answered them', ...entries.map((e) => `${e.ip}\t${e.host}\t# ${e.node}`)].join('\n') + '\n';
}

/** Problems running a scenario on this lab (sizes must match: the scenario's files are used as they are). */
export function scenarioProblems(plan: Plan, facts: ScenarioFacts): string[] {
  const out: string[] = [];
  if (facts.replicas.length !== plan.cluster.n) out.push(`the scenario's config.txt has ${facts.replicas.length} replicas, the lab ${plan.cluster.n}: bring the lab up with ${facts.replicas.length} replicas (up ${facts.replicas.length})`);
  if (facts.f !== undefined && 2 * facts.f + 1 !== facts.replicas.length) out.push(`the scenario's config.txt says f ${facts.f} for ${facts.replicas.length} replicas (VR needs 2f+1)`);
  return out;
}
