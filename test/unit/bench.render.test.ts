import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CSV_COLUMNS, parseCsv, toCsv } from '../../src/bench/csv.js';
import { escapeXml, niceScale, renderChart } from '../../src/bench/chart.js';
import { renderReport, summaryTable } from '../../src/bench/report.js';
import { summarize } from '../../src/bench/stats.js';
import { ResultsFile } from '../../src/bench/types.js';
import { OPTS, rec } from '../helpers/bench.fixtures.js';

const haveXmllint = spawnSync('xmllint', ['--version'], { stdio: 'ignore' }).status === 0;

const records = [
  rec({ replicas: 3, arm: 'baseline', threads: 1, repeat: 0, seq: 0 }, 1000, 500, 900),
  rec({ replicas: 3, arm: 'reply', threads: 1, repeat: 0, seq: 1, error: 'said "no", twice\nreally' }, 1300, 400, 800),
  rec({ replicas: 3, arm: 'reply', threads: 1, repeat: 1, seq: 2, crashes: [{ node: 'replica2', process: 'replica', pid: 77, signal: 'SIGSEGV', topFrames: ['crash_on_purpose', 'execute_op', 'main'], dir: 'crashes/replica2-77', core: 'core' }] }, null),
  rec({ replicas: 5, arm: 'baseline', threads: 1, repeat: 0, seq: 3 }, 800, 600, 1200),
];
const results: ResultsFile = { kind: 'electrode-lab-bench-results', version: 1, id: 'x', lab: 't', createdAt: '', outcome: 'complete', options: OPTS, skipped: [{ arm: 'quorum', reason: 'needs the eBPF loader' }], records };

describe('CSV', () => {
  it('one row per record, quoting commas, quotes and newlines, round-trips', () => {
    const csv = toCsv(records);
    const rows = parseCsv(csv);
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(1 + records.length);
    const col = (name: string) => CSV_COLUMNS.indexOf(name as (typeof CSV_COLUMNS)[number]);
    expect(rows[2]![col('error')]).toBe('said "no", twice\nreally');
    expect(rows[3]![col('crash_top_frame')]).toBe('crash_on_purpose');
    expect(rows[3]![col('throughput_ops')]).toBe('');
    expect(rows[1]![col('p99_us')]).toBe('900');
  });
});

describe('report', () => {
  it('table has one line per cell with speedup and crash marks', () => {
    const t = summaryTable(summarize(results));
    const lines = t.split('\n');
    expect(lines).toHaveLength(2 + 3);
    expect(lines[0]).toMatch(/replicas\s+arm\s+threads/);
    const reply = lines.find((l) => /\breply\b/.test(l))!;
    expect(reply).toMatch(/1\.30x \(\+30\.0%\)/);
    expect(reply).toMatch(/1 \+1 crashed/);
  });

  it('full report lists skipped arms and crashes with top frames', () => {
    const r = renderReport(results, '/runs/x');
    expect(r).toMatch(/skipped arm 'quorum': needs the eBPF loader/);
    expect(r).toMatch(/replica2 \(replica, pid 77\) SIGSEGV: crash_on_purpose <- execute_op <- main/);
  });
});

describe('SVG chart', () => {
  it('nice scales', () => {
    expect(niceScale(0)).toEqual({ max: 1, step: 0.2 });
    expect(niceScale(1234)).toEqual({ max: 1250, step: 250 });
    expect(niceScale(87)).toEqual({ max: 100, step: 20 });
  });

  it('renders well-formed SVG with a bar per cell and escaped text', () => {
    const svg = renderChart(summarize(results), { title: 'bench <t> & co' });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain(escapeXml('bench <t> & co'));
    expect(svg).not.toContain('<t>');
    expect(svg).toContain('3 replicas');
    expect(svg).toContain('5 replicas');
    // 3 cells x 3 metrics, minus nothing: each cell with figures has a bar per metric
    expect((svg.match(/<rect x="[\d.]+" y="[\d.]+" width="22"/g) ?? []).length).toBe(9);
    expect(svg).toContain('+30%');
    expect(svg).not.toMatch(/NaN|undefined/);
  });

  it.skipIf(!haveXmllint)('is valid XML according to a real parser (xmllint; skipped without libxml2-utils)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'el-chart-'));
    try {
      const xmllint = (svg: string) => {
        const f = join(dir, 'c.svg');
        writeFileSync(f, svg);
        return spawnSync('xmllint', ['--noout', f], { encoding: 'utf8' });
      };
      const svg = renderChart(summarize(results), { title: 't' });
      const ok = xmllint(svg);
      expect(ok.status, ok.stderr).toBe(0);
      expect(ok.stderr).toBe('');
      // the parser does refuse a chart that is not well formed (the check above can fail)
      expect(xmllint(svg.replace('</svg>', '')).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
