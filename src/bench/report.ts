/**
 * The terminal table: median over repeats with min-max, CV (warned above
 * 10 %), speedup over baseline; and the short crash summary.
 */
import { CV_WARN_PERCENT, SummaryRow, summarize } from './stats.js';
import { ResultsFile, TrialRecord } from './types.js';

const fmtInt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const fmtUs = (x: number) => (Number.isFinite(x) ? (x >= 100 ? Math.round(x).toString() : x.toFixed(1)) : '-');
const fmtPct = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)}%` : '-');

export function formatSpeedup(s: number): string {
  if (!Number.isFinite(s)) return '-';
  const pct = (s - 1) * 100;
  return `${s.toFixed(2)}x (${pct >= 0 ? '+' : ''}${pct.toFixed(1)}%)`;
}

function table(header: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function summaryTable(rows: readonly SummaryRow[]): string {
  const withNemesis = rows.some((r) => r.nemesis !== 'none');
  const header = ['replicas', 'arm', 'threads', ...(withNemesis ? ['nemesis', 'recovery ms'] : []), 'runs', 'ops/s median', 'min-max', 'CV', 'vs baseline', 'p50 us', 'p99 us', 'p50 vs base', 'errors', 'safety'];
  const right = [true, false, true, ...(withNemesis ? [false, true] : []), false, true, true, true, true, true, true, true, true, false];
  const body = rows.map((r) => {
    const runs = `${r.okRuns}` + (r.crashedRuns ? ` +${r.crashedRuns} crashed` : '') + (r.failedRuns ? ` +${r.failedRuns} failed` : '');
    return [
      String(r.replicas),
      r.arm,
      String(r.threads),
      ...(withNemesis ? [r.nemesis, Number.isFinite(r.recoveryMs) ? String(Math.round(r.recoveryMs)) : '-'] : []),
      runs,
      fmtInt(r.throughput.median),
      r.throughput.n ? `${fmtInt(r.throughput.min)}-${fmtInt(r.throughput.max)}` : '-',
      fmtPct(r.throughput.cv) + (r.cvWarning ? ' !' : ''),
      r.arm === 'baseline' ? '' : formatSpeedup(r.speedup),
      fmtUs(r.p50.median),
      fmtUs(r.p99.median),
      r.arm === 'baseline' || !Number.isFinite(r.p50Change) ? '' : `${r.p50Change >= 0 ? '+' : ''}${r.p50Change.toFixed(1)}%`,
      String(r.errors),
      r.safety,
    ];
  });
  return table(header, body, right);
}

export function crashSummary(records: readonly TrialRecord[]): string[] {
  const out: string[] = [];
  for (const r of records) {
    for (const c of r.crashes) {
      const frames = c.topFrames.length ? c.topFrames.slice(0, 4).join(' <- ') : 'no backtrace';
      out.push(`${r.replicas} replicas/${r.arm}/${r.threads}t/repeat ${r.repeat + 1}: ${c.node} (${c.process}, pid ${c.pid}) ${c.signal ?? 'died'}: ${frames}  [${c.dir}]`);
    }
  }
  return out;
}

/** The whole human report of a run (used by bench at the end and by `report <run>`). */
export function renderReport(results: ResultsFile, runDir: string): string {
  const rows = summarize(results);
  const out: string[] = [];
  const o = results.options;
  const load = o.duration !== undefined ? `${o.duration}s` : `${o.requests ?? '?'} requests`;
  out.push(`run ${results.id}  lab '${results.lab}'  ${results.outcome}  (${results.records.length} trials; ${load}, warmup ${o.warmup}s, repeat ${o.repeat})`);
  for (const s of results.skipped) out.push(`skipped arm '${s.arm}': ${s.reason}`);
  if (rows.length) {
    out.push('');
    out.push(summaryTable(rows));
  } else {
    out.push('no trials recorded');
  }
  const warn = rows.filter((r) => r.cvWarning);
  if (warn.length) {
    out.push('');
    out.push(`warning: throughput CV above ${CV_WARN_PERCENT}% for ${warn.map((r) => `${r.replicas}/${r.arm}/${r.threads}t`).join(', ')}: the machine is noisy; add --repeat or quiet the host`);
  }
  const unsafe = results.records.filter((r) => r.safety && (r.safety.verdict === 'not-linearizable' || r.safety.lostAcked > 0 || r.safety.divergence));
  const checked = results.records.filter((r) => r.safety && r.safety.verdict !== 'unchecked');
  if (checked.length) {
    out.push('');
    const ops = checked.reduce((a, r) => a + r.safety!.ops, 0);
    const acked = checked.reduce((a, r) => a + r.safety!.acked, 0);
    out.push(
      unsafe.length
        ? `SAFETY VIOLATIONS in ${unsafe.length} of ${checked.length} checked trials:`
        : `safety: ${checked.length} trial histories checked (${ops.toLocaleString('en-US')} ops), all linearizable where decided; 0 of ${acked.toLocaleString('en-US')} acknowledged requests lost`,
    );
    for (const r of unsafe) {
      const s = r.safety!;
      out.push(`  ${r.replicas}/${r.arm}/${r.threads}t/repeat ${r.repeat + 1}${r.nemesis !== 'none' ? `/${r.nemesis}` : ''}: ${s.verdict}${s.lostAcked ? `, ${s.lostAcked} acknowledged lost (${s.lostExamples.join(', ')})` : ''}${s.divergence ? `, ${s.divergence}` : ''}`);
      if (s.failure) for (const l of s.failure.split('\n')) out.push(`    ${l}`);
    }
    const undecided = checked.filter((r) => r.safety!.verdict === 'unknown').length;
    if (undecided) out.push(`  ${undecided} trial(s) undecided: the checker's budget ran out on some key (see results.json)`);
  }
  const faults = results.records.filter((r) => r.fault);
  if (faults.length) {
    const problems = faults.filter((r) => r.fault!.problem);
    for (const r of problems) out.push(`nemesis ${r.fault!.name} in ${r.replicas}/${r.arm}/${r.threads}t: ${r.fault!.problem}`);
  }
  const crashes = crashSummary(results.records);
  if (crashes.length) {
    out.push('');
    out.push(`crashes (${crashes.length}):`);
    for (const c of crashes) out.push(`  ${c}`);
  }
  const failed = results.records.filter((r) => r.status === 'failed' && !r.crashed);
  if (failed.length) {
    out.push('');
    out.push(`failed trials (${failed.length}):`);
    for (const r of failed) out.push(`  ${r.replicas}/${r.arm}/${r.threads}t/repeat ${r.repeat + 1}: ${r.error ?? 'unknown'}`);
  }
  out.push('');
  out.push(`files: ${runDir}/{results.json,results.csv,environment.json,commands.log,chart.svg}`);
  return out.join('\n');
}
