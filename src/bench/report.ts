/**
 * The terminal table: median over repeats with min-max, CV (warned above
 * 10 %), speedup over baseline; and the short crash summary.
 */
import { NOISE_RULE, noiseOf } from './cpu.js';
import { CV_WARN_PERCENT, SummaryRow, summarize } from './stats.js';
import { ResultsFile, TrialRecord, isFloorArm, labSize } from './types.js';
import { safetyOutcome } from './safety.js';
import type { ForgeRecord } from './nemesis.js';

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

const fmtChange = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(1)}%` : '');

export function summaryTable(rows: readonly SummaryRow[], opts: { unsafeNoRecovery?: boolean } = {}): string {
  const withNemesis = rows.some((r) => r.nemesis !== 'none');
  const withCpu = rows.some((r) => Number.isFinite(r.cpuPerOp));
  const withFloor = rows.some((r) => Number.isFinite(r.floorRatio));
  const withRelay = rows.some((r) => Number.isFinite(r.relayRatio));
  const withImpl = rows.some((r) => r.impl === 'upstream');
  const withClients = rows.some((r) => r.clients > 1);
  const cols: { h: string; right: boolean; cell: (r: SummaryRow) => string; when?: boolean }[] = [
    { h: 'replicas', right: true, cell: (r) => String(r.replicas) },
    { h: 'clients', right: true, cell: (r) => String(r.clients), when: withClients },
    { h: 'impl', right: false, cell: (r) => r.impl, when: withImpl },
    { h: 'arm', right: false, cell: (r) => (opts.unsafeNoRecovery && !isFloorArm(r.arm) ? `${r.arm} UNSAFE-no-recovery` : r.arm) },
    { h: 'threads', right: true, cell: (r) => String(r.threads) },
    { h: 'nemesis', right: false, cell: (r) => r.nemesis, when: withNemesis },
    { h: 'recovery ms', right: true, cell: (r) => (Number.isFinite(r.recoveryMs) ? String(Math.round(r.recoveryMs)) : '-'), when: withNemesis },
    { h: 'runs', right: false, cell: (r) => `${r.okRuns}` + (r.noisyRuns ? ` (${r.noisyRuns} noisy ~)` : '') + (r.crashedRuns ? ` +${r.crashedRuns} crashed` : '') + (r.failedRuns ? ` +${r.failedRuns} failed` : '') },
    { h: 'ops/s median', right: true, cell: (r) => fmtInt(r.throughput.median) },
    { h: 'min-max', right: true, cell: (r) => (r.throughput.n ? `${fmtInt(r.throughput.min)}-${fmtInt(r.throughput.max)}` : '-') },
    { h: 'CV', right: true, cell: (r) => fmtPct(r.throughput.cv) + (r.cvWarning ? ' !' : '') },
    { h: 'vs baseline', right: true, cell: (r) => (r.arm === 'baseline' || isFloorArm(r.arm) ? '' : formatSpeedup(r.speedup)) },
    { h: 'vs ours', right: true, cell: (r) => (r.impl === 'upstream' ? formatSpeedup(r.vsOurs) : ''), when: withImpl },
    { h: 'p50 us', right: true, cell: (r) => fmtUs(r.p50.median) },
    { h: 'p99 us', right: true, cell: (r) => fmtUs(r.p99.median) },
    { h: 'p50 vs base', right: true, cell: (r) => (r.arm === 'baseline' || isFloorArm(r.arm) ? '' : fmtChange(r.p50Change)) },
    { h: 'p50/relay', right: true, cell: (r) => (Number.isFinite(r.relayRatio) ? `${r.relayRatio.toFixed(2)}x` : ''), when: withRelay },
    { h: 'p50/2 echo', right: true, cell: (r) => (Number.isFinite(r.floorRatio) ? `${r.floorRatio.toFixed(2)}x` : ''), when: withFloor },
    { h: 'CPU us/op', right: true, cell: (r) => (Number.isFinite(r.cpuPerOp) ? fmtUs(r.cpuPerOp) : '-'), when: withCpu },
    { h: 'CPU vs base', right: true, cell: (r) => (r.arm === 'baseline' || isFloorArm(r.arm) ? '' : fmtChange(r.cpuChange)), when: withCpu },
    { h: 'leader/follower us/op', right: true, cell: (r) => (!isFloorArm(r.arm) && Number.isFinite(r.leaderCpu) ? `${fmtUs(r.leaderCpu)}/${fmtUs(r.followerCpu)}` : ''), when: withCpu },
    { h: 'csw/op', right: true, cell: (r) => (Number.isFinite(r.ctxPerOp) ? r.ctxPerOp.toFixed(1) : '-'), when: withCpu },
    { h: 'errors', right: true, cell: (r) => String(r.errors) },
    { h: 'safety', right: false, cell: (r) => (isFloorArm(r.arm) ? '' : r.safety) },
  ];
  const shown = cols.filter((c) => c.when !== false);
  return table(
    shown.map((c) => c.h),
    rows.map((r) => shown.map((c) => c.cell(r))),
    shown.map((c) => c.right),
  );
}

/**
 * The paper's figures (Electrode, NSDI '23, CloudLab xl170, 25 Gb NICs,
 * kernel 5.8): all three fast paths against the baseline.
 */
export const PAPER = {
  throughput: { 3: 34.9, 5: 104.8, 7: 128.4 } as Record<number, number>,
  fiveReplicas: { broadcast: 31.7, quorum: 57.7 },
  leaderCpuLower: [22.7, 38.0],
  followerCpuLower: [16.0, 35.7],
  p50Lower: [12.5, 25.6],
};

/** Our run next to the paper, for the `all` arm at the highest thread count of each replica count. */
export function paperComparison(rows: readonly SummaryRow[]): string[] {
  const out: string[] = [];
  for (const n of [...new Set(rows.map((r) => r.replicas))].sort((a, b) => a - b)) {
    const all = rows.filter((r) => r.replicas === n && r.arm === 'all' && r.impl !== 'upstream' && r.nemesis === 'none' && Number.isFinite(r.speedup));
    if (!all.length) continue;
    const r = all.reduce((a, b) => (b.threads > a.threads ? b : a));
    const paper = PAPER.throughput[n];
    const parts = [`${n} replicas, ${r.threads} thread${r.threads === 1 ? '' : 's'}: all/baseline ${formatSpeedup(r.speedup)}${paper !== undefined ? ` (paper +${paper}%)` : ''}`];
    if (Number.isFinite(r.p50Change)) parts.push(`p50 ${fmtChange(r.p50Change)} (paper -${PAPER.p50Lower[0]}..-${PAPER.p50Lower[1]}%)`);
    if (Number.isFinite(r.leaderCpuChange)) parts.push(`leader CPU/op ${fmtChange(r.leaderCpuChange)} (paper -${PAPER.leaderCpuLower[0]}..-${PAPER.leaderCpuLower[1]}%)`);
    if (Number.isFinite(r.followerCpuChange)) parts.push(`busiest follower CPU/op ${fmtChange(r.followerCpuChange)} (paper -${PAPER.followerCpuLower[0]}..-${PAPER.followerCpuLower[1]}%)`);
    if (Number.isFinite(r.cpuChange)) parts.push(`lab CPU/op ${fmtChange(r.cpuChange)}`);
    out.push(`  ${parts.join('; ')}`);
  }
  return out;
}

export function crashSummary(records: readonly TrialRecord[]): string[] {
  const out: string[] = [];
  for (const r of records) {
    for (const c of r.crashes) {
      const frames = c.topFrames.length ? c.topFrames.slice(0, 4).join(' <- ') : 'no backtrace';
      out.push(`${r.replicas} replicas/${r.impl === 'upstream' ? 'upstream ' : ''}${r.arm}/${r.threads}t/repeat ${r.repeat + 1}: ${c.node} (${c.process}, pid ${c.pid}) ${c.signal ?? 'died'}: ${frames}  [${c.dir}]`);
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
  if (o.unsafeNoRecovery) out.push('UNSAFE NEGATIVE CONTROL: --unsafe-no-recovery ran the lab build with recovery switched off; its lost writes prove the checker, its figures are no result');
  if (rows.length) {
    out.push('');
    out.push(summaryTable(rows, { unsafeNoRecovery: Boolean(o.unsafeNoRecovery) }));
  } else {
    out.push('no trials recorded');
  }
  const paper = paperComparison(rows);
  if (paper.length) {
    out.push('');
    out.push('against the paper (CPU: task time per op; on a netns lab the split between roles is the veths\', see README "CPU per operation"):');
    out.push(...paper);
  }
  const warn = rows.filter((r) => r.cvWarning);
  if (warn.length) {
    out.push('');
    out.push(`warning: throughput CV above ${CV_WARN_PERCENT}% for ${warn.map((r) => `${labSize(r.replicas, r.clients)}/${r.arm}/${r.threads}t`).join(', ')}: the machine is noisy; add --repeat or quiet the host`);
  }
  const noisy = results.records.filter((r) => r.status === 'ok' && noiseOf(r.cpu));
  if (noisy.length) {
    out.push('');
    out.push(`warning: ${noisy.length} trial(s) ran on a noisy machine (${NOISE_RULE}); their rows say "noisy ~" in runs:`);
    for (const r of noisy.slice(0, 12)) out.push(`  ${labSize(r.replicas, r.clients)}/${r.arm}/${r.threads}t/repeat ${r.repeat + 1}${(r.nemesis ?? 'none') !== 'none' ? `/${r.nemesis}` : ''}: ${noiseOf(r.cpu)}`);
    if (noisy.length > 12) out.push(`  ... and ${noisy.length - 12} more (results.json: cpu.stealShare, cpu.otherShare)`);
  }
  const protocol = results.records.filter((r) => !isFloorArm(r.arm));
  const unsafe = protocol.filter((r) => safetyOutcome(r.safety) === 'unsafe');
  const checked = protocol.filter((r) => r.safety && r.safety.verdict !== 'unchecked');
  const notChecked = results.options.check === false ? [] : protocol.filter((r) => safetyOutcome(r.safety) === 'not-checked');
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
      out.push(`  ${labSize(r.replicas, r.clients)}/${r.arm}/${r.threads}t/repeat ${r.repeat + 1}${r.nemesis !== 'none' ? `/${r.nemesis}` : ''}: ${s.verdict}${s.lostAcked ? `, ${s.lostAcked} acknowledged lost (${s.lostExamples.join(', ')})` : ''}${s.divergence ? `, ${s.divergence}` : ''}`);
      if (s.failure) for (const l of s.failure.split('\n')) out.push(`    ${l}`);
    }
    const undecided = checked.filter((r) => r.safety!.verdict === 'unknown').length;
    if (undecided) out.push(`  ${undecided} trial(s) unknown: the checker's budget ran out on some key (see results.json)`);
  }
  if (notChecked.length) {
    out.push('');
    out.push(`NOT CHECKED: ${notChecked.length} trial(s) proved nothing about safety:`);
    for (const r of notChecked) out.push(`  ${labSize(r.replicas, r.clients)}/${r.arm}/${r.threads}t/repeat ${r.repeat + 1}${r.nemesis !== 'none' ? `/${r.nemesis}` : ''}: ${r.safety ? r.safety.notChecked.join('; ') : `no safety record (${r.error ?? 'the client left no history or ack log'})`}`);
  }
  const faults = results.records.filter((r) => r.fault);
  if (faults.length) {
    const problems = faults.filter((r) => r.fault!.problem);
    for (const r of problems) out.push(`nemesis ${r.fault!.name} in ${labSize(r.replicas, r.clients)}/${r.arm}/${r.threads}t: ${r.fault!.problem}`);
    const restarts = faults.flatMap((r) => (r.fault!.actions ?? []).filter((a) => a.kind === 'kill' || a.kind === 'kill-restart'));
    const times = restarts.map((a) => a.recoveryMs).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
    if (restarts.length) out.push(`restarts: ${restarts.length}, normal again after ${times.length ? `${times[0]}-${times.at(-1)} ms (median ${times[times.length >> 1]})` : '-'}${restarts.length - times.length ? `; ${restarts.length - times.length} never normal or not restarted` : ''}`);
    const forged = faults.filter((r) => r.fault!.forge);
    if (forged.length) {
      const sum = (f: (x: ForgeRecord) => number) => forged.reduce((a, r) => a + f(r.fault!.forge!), 0);
      const uncounted = forged.filter((r) => r.fault!.forge!.uncounted || r.fault!.forge!.dropped === undefined).length;
      out.push(`forged: sent ${sum((x) => x.sent).toLocaleString('en-US')} / dropped ${sum((x) => x.dropped ?? 0).toLocaleString('en-US')} by the replicas' counters, in ${forged.length} trial(s)${uncounted ? `; ${uncounted} trial(s) lack some replica's exit counters` : ''}`);
      for (const r of forged) {
        const f = r.fault!.forge!;
        out.push(`  ${labSize(r.replicas, r.clients)}/${r.arm}/${r.threads}t/repeat ${r.repeat + 1}: sent ${f.sent} (${Object.entries(f.sentByLie).map(([k, v]) => `${k} ${v}`).join(', ')}), dropped ${f.dropped ?? '?'} (${Object.entries(f.droppedBy ?? {}).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(', ')})`);
      }
    }
    for (const r of faults.filter((x) => x.fault!.seed !== undefined)) out.push(`schedule ${r.fault!.name} in ${labSize(r.replicas, r.clients)}/${r.arm}/${r.threads}t/repeat ${r.repeat + 1}: seed ${r.fault!.seed}, ${r.fault!.schedule?.length ?? 0} faults planned, ${(r.fault!.actions ?? []).filter((a) => a.skipped).length} skipped (results.json has each)`);
  }
  const soaked = results.records.filter((r) => r.rss);
  if (soaked.length) {
    const grown = soaked.flatMap((r) => r.rss!.verdicts.filter((v) => v.grown).map((v) => `${labSize(r.replicas, r.clients)}/${r.arm}: ${v.node} ${v.firstKb} -> ${v.lastKb} kB`));
    out.push(`RSS (${soaked[0]!.rss!.rule}): ${grown.length ? `GREW in ${grown.join('; ')}` : `flat in ${soaked.length} trial(s), largest change ${Math.max(...soaked.flatMap((r) => r.rss!.verdicts.map((v) => v.growthPercent ?? 0)))}%`}`);
  }
  const up = [...new Map(results.records.filter((r) => r.upstream).map((r) => [r.upstream!.patch, r.upstream!])).values()];
  if (up.length) {
    out.push('');
    out.push('upstream rows (impl upstream: the user\'s Electrode tree, patched copy, its own bench/client):');
    for (const u of up) out.push(`  ${u.variant}: ${u.tree} ${u.commit ? `commit ${u.commit.slice(0, 12)}${u.dirty ? ' (dirty)' : ''}` : `sha256 ${u.digest.slice(0, 12)} (no git commit)`}, patch ${u.patch}${u.note ? `; ${u.note}` : ''}`);
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
    for (const r of failed) out.push(`  ${labSize(r.replicas, r.clients)}/${r.impl === 'upstream' ? 'upstream ' : ''}${r.arm}/${r.threads}t/repeat ${r.repeat + 1}: ${r.error ?? 'unknown'}`);
  }
  out.push('');
  out.push(`files: ${runDir}/{results.json,results.csv,environment.json,commands.log,chart.svg}`);
  return out.join('\n');
}
