/** results.csv: one row per trial, RFC 4180 quoting. */
import { TrialRecord } from './types.js';

export const CSV_COLUMNS = [
  'seq', 'replicas', 'arm', 'threads', 'repeat', 'status', 'crashed', 'requests', 'completed', 'errors', 'timeouts',
  'duration_s', 'throughput_ops', 'p50_us', 'p90_us', 'p95_us', 'p99_us', 'p999_us', 'max_us', 'mean_us',
  'crash_nodes', 'crash_signals', 'crash_top_frame', 'error',
  'nemesis', 'fault_targets', 'recovery_ms', 'linearizable', 'checked_ops', 'indeterminate', 'acked', 'lost_acked', 'diverged',
  'cpu_us_per_op', 'leader_us_per_op', 'followers_us_per_op', 'client_us_per_op', 'ksoftirqd_us_per_op', 'other_us_per_op', 'ctx_switches_per_op', 'cpu_busy', 'clients',
] as const;

export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(records: readonly TrialRecord[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of records) {
    const l = r.latency_us;
    const row: unknown[] = [
      r.seq, r.replicas, r.arm, r.threads, r.repeat, r.status, r.crashed, r.requests, r.completed, r.errors, r.timeouts,
      r.duration_s, r.throughput_ops, l?.p50, l?.p90, l?.p95, l?.p99, l?.p999, l?.max, l?.mean,
      r.crashes.map((c) => c.node).join(' '),
      r.crashes.map((c) => c.signal ?? '?').join(' '),
      r.crashes[0]?.topFrames[0] ?? '',
      r.error ?? '',
      r.nemesis ?? 'none', r.fault?.targets.join(' '), r.fault?.recoveryMs,
      r.safety?.verdict, r.safety?.ops, r.safety?.indeterminate, r.safety?.acked, r.safety?.lostAcked, r.safety ? Boolean(r.safety.divergence) : undefined,
      r.cpu?.perOpUs, r.cpu?.roles.leader, r.cpu?.roles.followers, r.cpu?.roles.client, r.cpu?.roles.ksoftirqd, r.cpu?.roles.other, r.cpu?.ctxSwitchesPerOp, r.cpu?.busy, r.clients ?? 1,
    ];
    lines.push(row.map(csvField).join(','));
  }
  return lines.join('\n') + '\n';
}

/** Minimal reader for our own CSV (quoted fields, doubled quotes, embedded newlines). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else if (c !== '\r') field += c;
  }
  if (field.length || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
