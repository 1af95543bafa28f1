/**
 * Lab 05, the crash hunt: which fault an incident plants, and how it is
 * planted, as pure functions. The fault is never written anywhere: it is
 * derived from the seed in the lab's record (FNV-1a of `<seed>:<lab>`
 * modulo the number of faults), the same way native/src/lab_faults.c
 * derives it inside the lab build of the replica. Keep the two lists in
 * the same order.
 */
import { fnv1a, Plan, replicas } from '../core/plan.js';
import { peerTable } from '../core/render.js';
import { asChoice, Answers } from './answers.js';
import { Checker, Verdict } from './check.js';
import { Evidence, newestRunOf } from './evidence.js';

export const CRASH_HUNT_FAULTS = ['peer-table', 'stale-view', 'unknown-port', 'shared-pins', 'dangling-pointer'] as const;
export type CrashHuntFault = (typeof CRASH_HUNT_FAULTS)[number];

/** One line each, for the README and the check's messages: the failure class the course project hit. */
export const FAULT_CLASSES: Record<CrashHuntFault, string> = {
  'peer-table': 'a stale or short peer table: the eBPF side addresses some replicas wrongly',
  'stale-view': "the kernel's view left stale after a view change (el_ctrl not updated)",
  'unknown-port': 'a UDP port the eBPF side does not know: its programs never recognise our frames',
  'shared-pins': 'pinned maps shared between nodes: replicas read and write each other\'s kernel state',
  'dangling-pointer': 'a dangling pointer in the view-change path: whoever becomes the next leader crashes',
};

/** The upstream programs' compiled-in port (REFERENCE.md 8), the one the planted peer table claims. */
export const UPSTREAM_PORT = 12345;

export function faultOf(seed: string, lab: string): CrashHuntFault {
  return CRASH_HUNT_FAULTS[fnv1a(`${seed}:${lab}`) % CRASH_HUNT_FAULTS.length]!;
}

/** The token the lab build of the replica derives the same fault from (`--lab-seed`). */
export function labSeedArg(seed: string, lab: string): string {
  return `${seed}:${lab}`;
}

/** A seed whose fault is `fault` (tests, and instructors who want to hand out a given fault). */
export function seedFor(fault: CrashHuntFault, lab: string, from = 1): string {
  for (let s = from; ; s++) if (faultOf(String(s), lab) === fault) return String(s);
}

/**
 * The peer table the loader is given. The planted ones copy the course
 * project's bugs: a MAC table with three real entries (the rest reuse
 * replica 2's MAC), or the upstream port compiled into the programs.
 */
export function plantedPeerTable(plan: Plan, fault: CrashHuntFault): string {
  if (fault === 'peer-table') {
    const third = replicas(plan)[2]!.mac;
    return peerTable({ ...plan, nodes: plan.nodes.map((n) => (n.role === 'replica' && n.index > 2 ? { ...n, mac: third } : n)) });
  }
  if (fault === 'unknown-port') return peerTable({ ...plan, nodes: plan.nodes.map((n) => (n.role === 'replica' ? { ...n, port: UPSTREAM_PORT } : n)) });
  return peerTable(plan);
}

/** Shared pins: every node's pin folder is the first replica's; attaching in reverse order leaves replica0's maps pinned. */
export function attachOrder(plan: Plan, fault: CrashHuntFault): number[] {
  const idx = replicas(plan).map((r) => r.index);
  return fault === 'shared-pins' ? idx.reverse() : idx;
}

const ALIASES: Record<string, CrashHuntFault> = {
  'peer-table': 'peer-table',
  'peers-table': 'peer-table',
  'stale-peer-table': 'peer-table',
  'short-peer-table': 'peer-table',
  'stale-view': 'stale-view',
  'stale-el-ctrl': 'stale-view',
  'unknown-port': 'unknown-port',
  port: 'unknown-port',
  'shared-pins': 'shared-pins',
  'dangling-pointer': 'dangling-pointer',
};

export function asFault(v: unknown): CrashHuntFault | undefined {
  const s = asChoice(v)?.replace(/[\s_]+/g, '-');
  return s ? ALIASES[s] : undefined;
}

export function checkLab05(answers: Answers, ev: Evidence): Verdict {
  const c = new Checker(answers);
  const seed = ev.record?.seed;
  const name = ev.record?.name ?? 'lab05';
  const run = newestRunOf(ev, name);
  c.fact('incident', Boolean(seed && run), `incident run ${run?.id ?? '?'} recorded`, 'no incident is recorded: run `electrode-lab lab start 05` (it plants the fault and runs the incident)');
  const planted = seed ? faultOf(seed, name) : undefined;
  c.value('diagnosis.fault', {
    parse: asFault,
    expected: planted,
    noFact: 'run `electrode-lab lab start 05` first',
    form: `one of ${CRASH_HUNT_FAULTS.join(', ')}`,
    where: 'that is not what was planted: compare bpf.json (ctrl, config, attached) in the crash folders with `status` and log.tail, and the `stats` rows of the replicas with each other',
    show: (x) => x,
  });
  c.text('diagnosis.evidence', 'name the files and rows that show it: a crash folder file, a `stats` row, a `status` column', 8);
  c.text('diagnosis.fix', 'what electrode-lab does so that a normal run cannot have this fault (project README, "Why")', 5);
  return { lab: '05-crash-hunt', items: c.items };
}
