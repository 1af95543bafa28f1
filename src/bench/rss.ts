/**
 * The soak's memory check: every replica's resident set (VmRSS of
 * /proc/<pid>/status, read through the node's exec) sampled across the
 * trial. The rule, per replica process (a restart is a new process with its
 * own samples):
 *
 *   GROWN when the median of the last third of its samples exceeds the
 *   median of the first third by more than RSS_GROWTH_PERCENT AND by more
 *   than RSS_GROWTH_MIN_KB (small absolute wobble of a small process is not
 *   growth); fewer than RSS_MIN_SAMPLES samples: not judged.
 *
 * Pure here: the sampling script and its parser, and the rule.
 */

export const RSS_GROWTH_PERCENT = 20;
export const RSS_GROWTH_MIN_KB = 4096;
export const RSS_MIN_SAMPLES = 6;
export const RSS_RULE = `grown = median VmRSS of the last third of a replica process's samples > median of the first third by more than ${RSS_GROWTH_PERCENT}% and ${RSS_GROWTH_MIN_KB} KiB (at least ${RSS_MIN_SAMPLES} samples)`;

/** `sh -c` text printing `<pid> <VmRSS kB>` per pid that still runs. */
export function rssSampleScript(pids: readonly number[]): string {
  return pids.map((p) => `v=$(awk '/^VmRSS:/{print $2}' /proc/${Math.trunc(p)}/status 2>/dev/null) && [ -n "$v" ] && echo "${Math.trunc(p)} $v"`).join('; ') + '; true';
}

export function parseRssSample(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^(\d+) (\d+)$/gm)) out.set(Number(m[1]), Number(m[2]));
  return out;
}

export interface RssSeries {
  node: string;
  pid: number;
  /** [ms after the client started, VmRSS kB] */
  samples: [number, number][];
}

export interface RssVerdict {
  node: string;
  pid: number;
  samples: number;
  firstKb?: number;
  lastKb?: number;
  growthPercent?: number;
  grown: boolean;
  /** Why it was not judged. */
  note?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function rssVerdict(series: RssSeries): RssVerdict {
  const kb = series.samples.map(([, v]) => v);
  const base = { node: series.node, pid: series.pid, samples: kb.length };
  if (kb.length < RSS_MIN_SAMPLES) return { ...base, grown: false, note: `only ${kb.length} sample(s): not judged` };
  const third = Math.floor(kb.length / 3);
  const firstKb = median(kb.slice(0, third));
  const lastKb = median(kb.slice(kb.length - third));
  const growthPercent = firstKb > 0 ? ((lastKb - firstKb) / firstKb) * 100 : 0;
  return { ...base, firstKb, lastKb, growthPercent: Math.round(growthPercent * 10) / 10, grown: growthPercent > RSS_GROWTH_PERCENT && lastKb - firstKb > RSS_GROWTH_MIN_KB };
}

export interface RssRecord {
  intervalMs: number;
  rule: string;
  verdicts: RssVerdict[];
  series: RssSeries[];
  problem?: string;
}
