/**
 * One line of our replica's and client's logs (native/src/util.c, el_log):
 *
 *   <unix s.us> <YYYY-MM-DDTHH:MM:SS.uuuuuuZ> <tag> <level>: <text>
 *   1765075200.123456 2025-12-07T02:40:00.123456Z replica1 info: view 1 normal (...)
 *
 * The epoch comes first so intervals are one subtraction; the UTC time after
 * it is for people reading a log next to tcpdump's time of day. Logs written
 * before the UTC field existed (`<unix s.us> <tag> <level>: <text>`) parse
 * too, so older work folders still check. Every parser of these lines goes
 * through here.
 */

export interface LogLine {
  /** Unix time in seconds (microsecond resolution). */
  t: number;
  /** The UTC field as written; absent in logs from before it existed. */
  utc?: string;
  /** `replica1`, `client`, ... */
  tag: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  text: string;
}

/** The time fields every line starts with: the epoch, then (optionally) the UTC time. */
export const LOG_TIME_SOURCE = String.raw`(\d+(?:\.\d+)?)(?: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z))?`;

const LINE = new RegExp(`^${LOG_TIME_SOURCE} (\\S+) (debug|info|warn|error): (.*)$`);

export function parseLogLine(line: string): LogLine | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  return { t: Number(m[1]), ...(m[2] ? { utc: m[2] } : {}), tag: m[3]!, level: m[4] as LogLine['level'], text: m[5]! };
}

/** Every parsed line of a log text (lines that are not log lines are skipped). */
export function logLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const l of text.split('\n')) {
    const p = parseLogLine(l);
    if (p) out.push(p);
  }
  return out;
}

/** The two time fields el_log writes, for a unix time in seconds: `1796000000.123456 2026-11-30T...:20.123456Z`. */
export function logTimeFields(unixS: number): string {
  const epoch = unixS.toFixed(6);
  const [sec, us] = epoch.split('.') as [string, string];
  return `${epoch} ${new Date(Number(sec) * 1000).toISOString().slice(0, 19)}.${us}Z`;
}

/** The time prefix for a line written from TypeScript (the run boundary), the same two fields el_log writes. */
export function logTimePrefix(at: Date): string {
  return logTimeFields(at.getTime() / 1000);
}

/**
 * The counters of the `stats: rx N, malformed N, ..., status S, view V, ...`
 * line a replica logs when it exits (native/src/replica.c), by name as
 * written (`acks beyond the log`, `view changes not joined (leader alive)`).
 * A parenthesised detail after a count (`quorum marks 3 (forged 0)`) is left
 * out; words (`status normal`) are not counters. Undefined without such a line.
 */
export function exitStats(logText: string): Record<string, number> | undefined {
  const line = logLines(logText).filter((l) => l.text.startsWith('stats: rx ')).at(-1);
  if (!line) return undefined;
  const out: Record<string, number> = {};
  // commas inside parentheses belong to the item before them
  for (const item of line.text.slice('stats: '.length).split(/, (?![^(]*\))/)) {
    const m = /^(.+?) (\d+)(?: \(.*\))?$/.exec(item);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}
