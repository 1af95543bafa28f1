/**
 * chart.svg, drawn by our own code (a few grouped bars need no library):
 * one column per replica count, three rows (throughput, p50, p99 latency),
 * bars per arm grouped by client threads, min-max whiskers over repeats,
 * the speedup over baseline printed on the throughput bars. Rows share one
 * y scale across replica counts so columns compare at a glance.
 */
import { SummaryRow } from './stats.js';
import { NOT_CHECKED_CELL, UNKNOWN_CELL, isUnsafeCell } from './safety.js';
import { ArmName, Impl, isFloorArm } from './types.js';
import { escapeXml } from './xml.js';

export { escapeXml };

export const ARM_COLORS: Record<ArmName, string> = {
  floor: '#d4d4d4',
  'relay-floor': '#bdbdbd',
  baseline: '#8c8c8c',
  broadcast: '#1f77b4',
  quorum: '#ff7f0e',
  reply: '#2ca02c',
  all: '#9467bd',
};

/** A "nice" axis maximum and tick step (1, 2, 2.5, 5 x 10^k) covering max. */
export function niceScale(max: number, ticks = 5): { max: number; step: number } {
  if (!Number.isFinite(max) || max <= 0) return { max: 1, step: 0.2 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

function fmtTick(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(1)}`;
}

interface Metric {
  title: string;
  unit: string;
  pick: (r: SummaryRow) => { median: number; min: number; max: number };
  note?: (r: SummaryRow) => string;
  /** Latency spans orders of magnitude when one arm stalls: switch to a log axis then. */
  logAllowed?: boolean;
  /** Colour the note green when it is negative (CPU), not when it is positive (throughput). */
  lowerIsBetter?: boolean;
}

/** Log axis when the positive values span more than 30x (a linear one would flatten all but the worst). */
export function useLogScale(values: readonly number[]): boolean {
  const pos = values.filter((v) => v > 0 && Number.isFinite(v));
  if (pos.length < 2) return false;
  return Math.max(...pos) / Math.min(...pos) > 30;
}

interface Series {
  key: string;
  arm: ArmName;
  impl: Impl;
}

/** `all`, or `upstream all` for the user's upstream tree's rows. */
function seriesKey(r: Pick<SummaryRow, 'arm' | 'impl'>): string {
  return r.impl === 'upstream' ? `upstream ${r.arm}` : r.arm;
}

function fillOf(se: Series): string {
  const c = ARM_COLORS[se.arm];
  return se.impl === 'upstream' ? `fill="${c}" fill-opacity="0.4" stroke="${c}" stroke-width="1.5"` : `fill="${c}"`;
}

export interface ChartOptions {
  title: string;
  subtitle?: string;
}

export function renderChart(allRows: readonly SummaryRow[], opts: ChartOptions): string {
  // bars show one nemesis (none when there is one): a fault's trials are another experiment
  const nemeses = [...new Set(allRows.map((r) => r.nemesis))];
  const shownNemesis = nemeses.includes('none') ? 'none' : nemeses[0];
  const rows = allRows.filter((r) => r.nemesis === shownNemesis || isFloorArm(r.arm));
  const protocolRows = allRows.filter((r) => !isFloorArm(r.arm));
  const unsafe = protocolRows.filter((r) => isUnsafeCell(r.safety));
  const undecided = protocolRows.filter((r) => r.safety === UNKNOWN_CELL).length;
  const unchecked = protocolRows.filter((r) => r.safety === NOT_CHECKED_CELL || r.safety === '-').length;
  const checkedRows = protocolRows.length - unchecked;
  const replicaCounts = [...new Set(rows.map((r) => r.replicas))].sort((a, b) => a - b);
  // one bar series per arm, and per implementation when upstream rows are there (paler bars)
  const arms = [...new Map(rows.map((r) => [seriesKey(r), { key: seriesKey(r), arm: r.arm, impl: r.impl ?? 'ours' }])).values()];
  const threadsList = [...new Set(rows.map((r) => r.threads))].sort((a, b) => a - b);
  const metrics: Metric[] = [
    {
      title: 'Throughput',
      unit: 'ops/s (higher is better)',
      pick: (r) => r.throughput,
      note: (r) => (r.arm !== 'baseline' && Number.isFinite(r.speedup) ? `${r.speedup >= 1 ? '+' : ''}${((r.speedup - 1) * 100).toFixed(0)}%` : ''),
    },
    { title: 'Median latency', unit: 'µs (lower is better)', pick: (r) => r.p50, logAllowed: true },
    { title: '99th percentile latency', unit: 'µs (lower is better)', pick: (r) => r.p99, logAllowed: true },
  ];
  if (rows.some((r) => Number.isFinite(r.cpuPerOp))) {
    metrics.push({
      title: 'CPU per operation',
      unit: 'µs of CPU, whole lab, per committed op (lower is better)',
      pick: (r) => ({ median: r.cpuPerOp, min: r.cpuPerOp, max: r.cpuPerOp }),
      note: (r) => (r.arm !== 'baseline' && !isFloorArm(r.arm) && Number.isFinite(r.cpuChange) ? `${r.cpuChange >= 0 ? '+' : ''}${r.cpuChange.toFixed(0)}%` : ''),
      lowerIsBetter: true,
    });
  }
  const curves = threadsList.length >= 3;

  const barW = 22;
  const barGap = 6;
  const groupGap = 24;
  const groupW = arms.length * (barW + barGap) - barGap;
  const plotW = Math.max(180, threadsList.length * groupW + (threadsList.length + 1) * groupGap);
  const panelGap = 34;
  const left = 70;
  const top = 96;
  const rowH = 170;
  const rowGap = 62;
  const legendW = arms.reduce((a, se) => a + 30 + se.key.length * 7.5, 0) + 290;
  const width = Math.max(left + replicaCounts.length * plotW + (replicaCounts.length - 1) * panelGap + 30, left + legendW, left + (opts.subtitle?.length ?? 0) * 6.6 + 20);
  const safetyY = top + metrics.length * (rowH + rowGap) + 4;
  const curveTop = safetyY + 30;
  const curveH = 220;
  const height = (curves ? curveTop + curveH + 80 : safetyY + 24) + 10;

  const s: string[] = [];
  s.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`);
  s.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  s.push(`<text x="${left}" y="28" font-size="18" font-weight="bold" fill="#222">${escapeXml(opts.title)}</text>`);
  if (opts.subtitle) s.push(`<text x="${left}" y="48" font-size="12" fill="#555">${escapeXml(opts.subtitle)}</text>`);
  // legend
  let lx = left;
  for (const se of arms) {
    s.push(`<rect x="${lx}" y="60" width="12" height="12" rx="2" ${fillOf(se)}/>`);
    s.push(`<text x="${lx + 17}" y="70.5" font-size="12" fill="#333">${escapeXml(se.key)}</text>`);
    lx += 30 + se.key.length * 7.5;
  }
  s.push(`<text x="${lx + 6}" y="70.5" font-size="11" fill="#777">whiskers: min-max over repeats; bars: median${shownNemesis && shownNemesis !== 'none' ? `; nemesis ${escapeXml(shownNemesis)}` : ''}</text>`);
  // the safety verdict: a fast path that loses acknowledged writes has no speedup worth showing
  const verdict = unsafe.length
    ? `SAFETY VIOLATED: ${unsafe.map((r) => `${r.replicas}/${r.arm}/${r.threads}t${r.nemesis !== 'none' ? `/${r.nemesis}` : ''} ${r.safety}`).join('; ')}`
    : checkedRows
      ? `safety: every checked history linearizable, no acknowledged request lost (${checkedRows - undecided} cells${undecided ? `; ${undecided} unknown: checker budget` : ''}${unchecked ? `; ${unchecked} NOT CHECKED: no history or no surviving log` : ''})`
      : 'safety: not checked (--no-check, or no trial left a history and a surviving log)';
  // green only when every protocol cell was checked and decided
  const colour = unsafe.length ? '#b42318' : checkedRows && !undecided && !unchecked ? '#1a7f37' : checkedRows ? '#9a6700' : '#777';
  s.push(`<text x="${left}" y="${safetyY + 12}" font-size="12" font-weight="bold" fill="${colour}">${escapeXml(verdict)}</text>`);

  metrics.forEach((m, mi) => {
    const y0 = top + mi * (rowH + rowGap) + 22;
    const values = rows.flatMap((r) => {
      const v = m.pick(r);
      return [v.median, v.max].filter(Number.isFinite);
    });
    const log = m.logAllowed === true && useLogScale(values);
    const scale = niceScale(Math.max(0, ...values));
    const lo = log ? 10 ** Math.floor(Math.log10(Math.min(...values.filter((v) => v > 0)))) : 0;
    const hi = log ? 10 ** Math.ceil(Math.log10(Math.max(...values))) : scale.max;
    const yOf = log
      ? (v: number) => y0 + rowH - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) * rowH
      : (v: number) => y0 + rowH - (v / scale.max) * rowH;
    const ticks: number[] = [];
    if (log) for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
    else for (let t = 0; t <= scale.max + 1e-9; t += scale.step) ticks.push(t);
    s.push(`<text x="${left}" y="${y0 - 10}" font-size="14" font-weight="bold" fill="#222">${escapeXml(m.title)} <tspan font-size="11" font-weight="normal" fill="#666">${escapeXml(m.unit)}${log ? ', log scale' : ''}</tspan></text>`);
    replicaCounts.forEach((n, pi) => {
      const x0 = left + pi * (plotW + panelGap);
      // grid + y ticks (labels only on the first panel)
      for (const t of ticks) {
        const y = yOf(t);
        s.push(`<line x1="${x0}" y1="${y.toFixed(1)}" x2="${x0 + plotW}" y2="${y.toFixed(1)}" stroke="${t === ticks[0] ? '#999' : '#e6e6e6'}" stroke-width="1"/>`);
        if (pi === 0) s.push(`<text x="${x0 - 6}" y="${(y + 4).toFixed(1)}" font-size="10" fill="#666" text-anchor="end">${fmtTick(t)}</text>`);
      }
      if (mi === 0) s.push(`<text x="${x0 + plotW / 2}" y="${top - 6}" font-size="13" font-weight="bold" fill="#333" text-anchor="middle">${n} replicas</text>`);
      threadsList.forEach((t, ti) => {
        const gx = x0 + groupGap + ti * (groupW + groupGap);
        s.push(`<text x="${gx + groupW / 2}" y="${y0 + rowH + 15}" font-size="10.5" fill="#555" text-anchor="middle">${t} thread${t === 1 ? '' : 's'}</text>`);
        let prevNoteY = -Infinity;
        arms.forEach((se, ai) => {
          const arm = se.key;
          const r = rows.find((x) => x.replicas === n && seriesKey(x) === se.key && x.threads === t);
          const bx = gx + ai * (barW + barGap);
          if (!r) return;
          const v = m.pick(r);
          if (!Number.isFinite(v.median)) {
            // a cell with no usable repeat (all crashed/failed) is marked, not hidden; one that was not measured (upstream's CPU) is left empty
            if (r.okRuns === 0) s.push(`<text x="${bx + barW / 2}" y="${y0 + rowH - 4}" font-size="11" fill="#c00" text-anchor="middle">×</text>`);
            return;
          }
          const y = yOf(v.median);
          const tip = `${n} replicas, ${arm}, ${t} threads: median ${fmtTick(v.median)} (min ${fmtTick(v.min)}, max ${fmtTick(v.max)})`;
          s.push(`<rect x="${bx}" y="${y.toFixed(1)}" width="${barW}" height="${(y0 + rowH - y).toFixed(1)}" rx="1.5" ${fillOf(se)}><title>${escapeXml(tip)}</title></rect>`);
          if (v.max > v.min) {
            const cx = bx + barW / 2;
            s.push(`<path d="M${cx} ${yOf(v.min).toFixed(1)}V${yOf(v.max).toFixed(1)}M${cx - 4} ${yOf(v.min).toFixed(1)}h8M${cx - 4} ${yOf(v.max).toFixed(1)}h8" stroke="#333" stroke-width="1"/>`);
          }
          const note = m.note?.(r) ?? '';
          if (note) {
            let ny = Math.min(y, yOf(v.max)) - 5;
            // neighbouring labels at the same height would overlap: lift this one a line
            if (Math.abs(ny - prevNoteY) < 11) ny = prevNoteY - 11;
            prevNoteY = ny;
            const good = m.lowerIsBetter ? r.cpuChange <= 0 : (r.speedup ?? 1) >= 1;
            s.push(`<text x="${bx + barW / 2}" y="${ny.toFixed(1)}" font-size="10" fill="${good ? '#1a7f37' : '#b42318'}" text-anchor="middle">${escapeXml(note)}</text>`);
          }
          if (mi === 0 && unsafe.some((u) => u.replicas === n && seriesKey(u) === se.key && u.threads === t)) {
            s.push(`<text x="${bx + barW / 2}" y="${(y0 + rowH - 16).toFixed(1)}" font-size="14" font-weight="bold" fill="#b42318" text-anchor="middle">✗<title>unsafe: ${escapeXml(r.safety)}</title></text>`);
          } else if (mi === 0 && !isFloorArm(r.arm) && (r.safety === UNKNOWN_CELL || r.safety === NOT_CHECKED_CELL)) {
            s.push(`<text x="${bx + barW / 2}" y="${(y0 + rowH - 16).toFixed(1)}" font-size="13" font-weight="bold" fill="#9a6700" text-anchor="middle">?<title>safety ${escapeXml(r.safety)}</title></text>`);
          }
          if (r.crashedRuns) s.push(`<text x="${bx + barW / 2}" y="${y0 + rowH - 4}" font-size="10" fill="#fff" text-anchor="middle">!</text>`);
        });
      });
    });
  });
  if (curves) s.push(...loadCurves(rows, replicaCounts, arms, { left, top: curveTop, plotW, panelGap, h: curveH }));
  s.push('</svg>');
  return s.join('\n') + '\n';
}

/**
 * Latency against throughput, one line per arm through its thread counts
 * (the paper's Figure 5): a fast path that pays off moves its line right
 * (more ops/s) and down (less latency).
 */
function loadCurves(rows: readonly SummaryRow[], replicaCounts: number[], arms: Series[], g: { left: number; top: number; plotW: number; panelGap: number; h: number }): string[] {
  const s: string[] = [];
  const pts = rows.filter((r) => Number.isFinite(r.throughput.median) && Number.isFinite(r.p50.median));
  if (!pts.length) return s;
  const xs = niceScale(Math.max(...pts.map((r) => r.throughput.median)));
  const ys = niceScale(Math.max(...pts.map((r) => r.p50.median)));
  s.push(`<text x="${g.left}" y="${g.top - 10}" font-size="14" font-weight="bold" fill="#222">Load curves <tspan font-size="11" font-weight="normal" fill="#666">median latency (µs) against throughput (ops/s), one point per client thread count</tspan></text>`);
  replicaCounts.forEach((n, pi) => {
    const x0 = g.left + pi * (g.plotW + g.panelGap);
    const y0 = g.top;
    const X = (v: number) => x0 + (v / xs.max) * g.plotW;
    const Y = (v: number) => y0 + g.h - (v / ys.max) * g.h;
    for (let t = 0; t <= ys.max + 1e-9; t += ys.step) {
      s.push(`<line x1="${x0}" y1="${Y(t).toFixed(1)}" x2="${x0 + g.plotW}" y2="${Y(t).toFixed(1)}" stroke="${t === 0 ? '#999' : '#e6e6e6'}"/>`);
      if (pi === 0) s.push(`<text x="${x0 - 6}" y="${(Y(t) + 4).toFixed(1)}" font-size="10" fill="#666" text-anchor="end">${fmtTick(t)}</text>`);
    }
    for (let t = 0; t <= xs.max + 1e-9; t += xs.step) {
      s.push(`<text x="${X(t).toFixed(1)}" y="${y0 + g.h + 14}" font-size="10" fill="#666" text-anchor="middle">${fmtTick(t)}</text>`);
    }
    s.push(`<text x="${x0 + g.plotW / 2}" y="${y0 + g.h + 30}" font-size="11" fill="#333" text-anchor="middle">${n} replicas: ops/s</text>`);
    for (const se of arms) {
      const arm = se.key;
      const line = pts.filter((r) => r.replicas === n && seriesKey(r) === se.key).sort((a, b) => a.threads - b.threads);
      if (!line.length) continue;
      s.push(`<polyline fill="none" stroke="${ARM_COLORS[se.arm]}"${se.impl === 'upstream' ? ' stroke-dasharray="5 3"' : ''} stroke-width="2" points="${line.map((r) => `${X(r.throughput.median).toFixed(1)},${Y(r.p50.median).toFixed(1)}`).join(' ')}"/>`);
      for (const r of line) {
        s.push(`<circle cx="${X(r.throughput.median).toFixed(1)}" cy="${Y(r.p50.median).toFixed(1)}" r="3.5" fill="${ARM_COLORS[se.arm]}" stroke="#333" stroke-width="0.5"><title>${escapeXml(`${n} replicas, ${arm}, ${r.threads} threads: ${fmtTick(r.throughput.median)} ops/s, p50 ${fmtTick(r.p50.median)} µs`)}</title></circle>`);
      }
    }
  });
  return s;
}
