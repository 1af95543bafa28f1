/** `--replica-args <index>:<flags>` (repeatable), shared by `bench` and `start`. */
import { InvalidArgumentError } from 'commander';
import { DiagnosticsError } from '../core/diagnostics.js';

/** Commander collector: "2:--crash-after 500" -> { '2': ['--crash-after', '500'] }, merged over earlier values. */
export function collectReplicaArgs(value: string, prev: Record<string, string[]> = {}): Record<string, string[]> {
  const m = /^(\d+):(.+)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected <replica index>:<flags>, e.g. '2:--crash-after 500'.`);
  return { ...prev, [m[1]!]: [...(prev[m[1]!] ?? []), ...m[2]!.trim().split(/\s+/)] };
}

/** Every index must name a replica of a cluster of n. */
export function checkReplicaIndexes(args: Record<string, string[]>, n: number): void {
  const bad = Object.keys(args).filter((i) => Number(i) >= n);
  if (bad.length) {
    throw new DiagnosticsError(bad.map((i) => ({ code: 'BAD_OPTION', subject: `--replica-args=${i}:...`, message: `the lab has replicas 0..${n - 1}`, hint: `use an index below ${n}` })));
  }
}
