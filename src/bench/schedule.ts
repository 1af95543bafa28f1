/**
 * The run order. Replica counts, then client node counts, are the outer
 * loops (resizing the lab is the expensive step); inside one size, repeat r runs the arms rotated left by
 * r, so on a drifting machine no arm is always first or always last.
 */
import { ArmName, Impl, Trial, isFloorArm } from './types.js';

export function rotate<T>(xs: readonly T[], by: number): T[] {
  if (xs.length === 0) return [];
  const k = ((by % xs.length) + xs.length) % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

export interface ScheduleInput {
  replicas: readonly number[];
  arms: readonly ArmName[];
  threads: readonly number[];
  repeat: number;
  /** Nemesis names; default ['none']. */
  nemesis?: readonly string[];
  /** Implementations (bench --impl), interleaved inside each cell and rotated per repeat; absent = ours only. */
  impls?: readonly Impl[];
  /** Client node counts (bench --clients); absent = [1]. A trial records its count when it is above 1. */
  clients?: readonly number[];
}

export function schedule(input: ScheduleInput): Trial[] {
  const out: Trial[] = [];
  for (const replicas of input.replicas) for (const k of input.clients ?? [1]) {
    const size = k > 1 ? { clients: k } : {};
    for (let repeat = 0; repeat < input.repeat; repeat++) {
      for (const arm of rotate(input.arms, repeat)) {
        // threads rotate too, against the arm rotation, so an arm does not
        // always meet the same thread count first
        for (const threads of rotate(input.threads, repeat)) {
          // the floor has no protocol to hurt: once, without a nemesis
          const faults = isFloorArm(arm) ? ['none'] : (input.nemesis ?? ['none']);
          // the floor has no implementation; upstream has no nemesis (yet): ours only there
          const impls = input.impls && input.impls.length ? rotate(input.impls, repeat) : undefined;
          for (const nemesis of faults) {
            if (!impls) out.push({ seq: out.length, replicas, arm, threads, repeat, nemesis, ...size });
            else for (const impl of impls) if (impl === 'ours' || (!isFloorArm(arm) && nemesis === 'none')) out.push({ seq: out.length, replicas, arm, threads, repeat, nemesis, impl, ...size });
          }
        }
      }
    }
  }
  return out;
}
