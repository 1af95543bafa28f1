/**
 * Why an upstream process died (pure): its crash folder's signal, frames,
 * log tail and the variant it ran, matched against the failure classes the
 * code has (src/upstream/NOTES.md, with file:line). Each line says what
 * happened and where in upstream's code; the last line is what to read
 * when nothing matched.
 */
import { ScenarioFacts } from './scenario.js';
import { UPSTREAM_PORT } from './patch.js';

export interface CrashFacts {
  /** upstream-replica, upstream-fast (the loader), upstream-client */
  process: string;
  signal: string | null;
  topFrames: string[];
  logTail: string;
  backtrace?: string;
  /** Values the run's files held. */
  values: 'generated' | 'scenario';
  /** The ports fast_kern.c compared with, and the replicas' ports. */
  kernPorts?: number[];
  replicaPorts?: number[];
  sharedBpffs?: boolean;
}

const has = (frames: string[], re: RegExp) => frames.some((f) => re.test(f));

export function explainUpstreamCrash(c: CrashFacts): string[] {
  const out: string[] = [];
  const frames = c.topFrames;
  const bt = c.backtrace ?? '';
  const log = c.logTail;
  if (has(frames, /HandleDoViewChange/) || /HandleDoViewChange/.test(bt)) {
    out.push(
      "the replica died in VRReplica::HandleDoViewChange: the loop `for (auto kv : *msgs) { DoViewChangeMessage &x = kv.second; ... latestMsg = &x; }` (vr/replica.cc:1154-1161) keeps a pointer into a copy that dies with each iteration, and the code after the loop reads it (:1169-1219): undefined behaviour on the replica that leads the new view",
    );
  }
  const pinAssert = /Assertion `bpf_obj_pin\(([^,]+),\s*"([^"]+)"\)/.exec(log);
  if (pinAssert) {
    out.push(
      c.sharedBpffs
        ? `the loader aborted: ${pinAssert[2]} was already pinned, by ANOTHER node's loader: every node's /sys/fs/bpf is one bpffs here (the compose file's /sys/fs/bpf volume, reproduced with --upstream-shared-bpffs), and fast_user.c asserts each pin succeeds (fast_user.c:319-321)`
        : `the loader aborted: ${pinAssert[2]} was already pinned (a loader killed before it unpinned, or one still running): fast_user.c asserts each pin succeeds (fast_user.c:319-321); electrode-lab removes stale pins before each start`,
    );
  }
  if (c.process === 'upstream-fast' && (has(frames, /sscanf|strtol|rawmemchr|__strlen|vfscanf/) || /sscanf/.test(bt)) && !pinAssert) {
    out.push('the loader segfaulted parsing the MAC table: eths[] (xdp-handler/fast_user.c:281-285) has fewer real entries than replicas, and sscanf(NULL, ...) on an entry past the initialisers crashes before anything is attached');
  }
  const refused = /BPF program is too large|failed to load|verifier|-EACCES|Permission denied \(-13\)/.exec(log);
  if (c.process === 'upstream-fast' && refused) {
    const lines = log.split('\n').filter((l) => /libbpf|processed \d+ insns|too large|R\d|invalid|failed/.test(l)).slice(-6);
    out.push(`this kernel's verifier refused upstream's programs; its last lines:\n    ${lines.join('\n    ')}`);
  }
  if (/Error: cannot open|fopen/.test(log) && c.process === 'upstream-fast') out.push('the loader could not open config.txt (fast_user.c reads it relative to its working directory)');
  const assert = /Assertion `([^']+)' failed/.exec(log);
  if (assert && !pinAssert) out.push(`an assert() in upstream's code failed: ${assert[1]}`);
  const panic = /PANIC[^\n]*|Panic[^\n]*/.exec(log);
  if (panic) out.push(`upstream Panic()ed: ${panic[0].trim().slice(0, 200)}`);

  if (c.process === 'upstream-replica') {
    const vc = (log.match(/starting view change|Starting view change for view/g) ?? []).length;
    if (vc) out.push(`its log tail shows ${vc} view-change step(s) before it died ("Have not heard from leader; starting view change" / "Starting view change for view N"): followers that stop hearing the leader for 5 s start view changes`);
    const kp = [...new Set(c.kernPorts ?? [])];
    const rp = [...new Set(c.replicaPorts ?? [])];
    if (kp.length && rp.length && rp.some((p) => !kp.includes(p))) {
      out.push(
        `the replicas used port(s) ${rp.join(',')} but fast_kern.c only handles ${kp.join(',')}: the TC program never cloned, and a replica built with TC_BROADCAST sends each Prepare/Commit to ONE follower (lib/transportcommon.h), so the others heard nothing and started the view changes`,
      );
    }
  }
  if (!out.length) out.push(`no known upstream failure class matched ${c.signal ?? 'this exit'}${frames.length ? ` in ${frames.slice(0, 3).join(' <- ')}` : ''}: read backtrace.txt (gdb, crashing thread first) and log.tail`);
  return out;
}

/** The lines `up --scenario` prints about a scenario: what its files said, in one place with their consequence. */
export function scenarioSummary(facts: ScenarioFacts, kernPorts: number[] = [UPSTREAM_PORT, UPSTREAM_PORT]): string[] {
  const n = facts.replicas.length;
  const shared = facts.services.filter((s) => s.hostBpffs).length;
  return [
    `config.txt: f ${facts.f}, ${n} replicas ${facts.replicas.map((r) => `${r.host}:${r.port}`).join(' ')}`,
    `fast_common.h: CLUSTER_SIZE ${facts.clusterSize}; fast_user.c: eths[${facts.eths?.size ?? '?'}] with ${facts.eths?.entries.filter((e) => e !== '').length ?? 0} MACs, config read from ${facts.configRead ?? '?'}`,
    `fast_kern.c: port ${[...new Set(kernPorts)].join(',')}; build: replica CXXFLAGS "${facts.build.userFlags ?? ''}", eBPF EXTRA_CFLAGS "${facts.build.kernFlags ?? ''}"`,
    `docker-compose: ${facts.services.filter((s) => s.role === 'replica').length} replica containers${shared ? `; ${shared} containers (replicas and client) mount the host's /sys/fs/bpf` : ''}`,
  ];
}

/** Fewer resends than this are ordinary loss recovery; more, with no progress, is a stall. */
export const STALL_RESENDS = 10;

/**
 * Why upstream's client stopped getting replies (pure), from the leader's
 * log and the variant's kernel switches; undefined when the log shows no
 * stall. With FAST_QUORUM_PRUNE, HandlePrepareOK (xdp-handler/fast_kern.c:
 * 284-287) passes a PrepareOK up only when the op's bitset holds exactly
 * QUORUM_SIZE - 1 acks and drops every other one, and the TC side clears that
 * bitset only for a Prepare of another (view, op) (fast_kern.c:456-465): once
 * more than a quorum acked, every ack to a resent Prepare of the same op is
 * dropped, so one lost quorum-completing PrepareOK stalls the op for good.
 */
export function explainUpstreamStall(leaderLog: string, kernDefines: string[]): string | undefined {
  const resends = (leaderLog.match(/Resending prepare/g) ?? []).length;
  if (resends < STALL_RESENDS) return undefined;
  if (kernDefines.includes('-DFAST_QUORUM_PRUNE')) {
    return `upstream's leader resent a Prepare ${resends} times and never heard a quorum: its quorum prune (xdp-handler/fast_kern.c:284-287) passes a PrepareOK only while the op's bitset holds exactly QUORUM_SIZE - 1 acks, and a resent Prepare of the same op does not clear the bitset (fast_kern.c:456-465), so once more than QUORUM_SIZE - 1 followers acked, every later ack of that op is dropped and one lost quorum-completing PrepareOK stalls the op for good (a liveness bug of upstream's fast path, not a lost write)`;
  }
  return `upstream's leader resent a Prepare ${resends} times and never heard a quorum (no quorum prune in this variant: the followers' acks did not arrive; see their logs)`;
}
