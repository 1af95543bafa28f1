/** The one atomic writer (src/edges/files.ts) and the one reader of results.json (src/bench/store.ts). */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readResults } from '../../src/bench/store.js';
import { readTextChunks, writeAtomic } from '../../src/edges/files.js';
import { isEmptyText, linesOf } from '../../src/core/text.js';

const dir = mkdtempSync(join(tmpdir(), 'el-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('files', () => {
  it('readTextChunks: chunks that end at line breaks and join to the file; linesOf walks them like split', () => {
    const f = join(dir, 'big.txt');
    const lines = Array.from({ length: 500 }, (_, i) => `line ${i} ${'x'.repeat(i % 37)} é`);
    writeFileSync(f, lines.join('\n') + '\npartial');
    const chunks = readTextChunks(f, 256);
    expect(chunks.length).toBeGreaterThan(20);
    expect(chunks.slice(0, -1).every((c) => c.endsWith('\n'))).toBe(true);
    expect(chunks.join('')).toBe(readFileSync(f, 'utf8'));
    expect([...linesOf(chunks)]).toEqual([...lines, 'partial']);
    expect([...linesOf(chunks, { completeOnly: true })]).toEqual(lines);
    expect([...linesOf('a\n\nb\n')]).toEqual(['a', '', 'b']);
    // a line longer than a chunk: its chunk grows, nothing is split inside it
    writeFileSync(f, 'y'.repeat(1000) + '\nz\n');
    const long = readTextChunks(f, 64);
    expect(long.join('')).toBe('y'.repeat(1000) + '\nz\n');
    expect(long[0]!.startsWith('y'.repeat(1000) + '\n')).toBe(true);
    expect(long.every((c) => c.endsWith('\n'))).toBe(true);
    writeFileSync(f, '');
    expect(readTextChunks(f)).toEqual([]);
    expect(isEmptyText([])).toBe(true);
    expect(isEmptyText(['', 'a'])).toBe(false);
  });

  it('writeAtomic makes the folder, replaces the file whole and leaves no temporary file', () => {
    const f = join(dir, 'a', 'b', 'state.json');
    writeAtomic(f, 'one');
    writeAtomic(f, 'two');
    expect(readFileSync(f, 'utf8')).toBe('two');
    expect(readdirSync(join(dir, 'a', 'b'))).toEqual(['state.json']);
  });

  it('readResults: ours, or undefined for a missing, half-written or foreign file', () => {
    const ok = join(dir, 'ok.json');
    writeFileSync(ok, JSON.stringify({ kind: 'electrode-lab-bench-results', version: 1, lab: 'lab', records: [] }));
    expect(readResults(ok)?.lab).toBe('lab');
    const half = join(dir, 'half.json');
    writeFileSync(half, '{"kind":"electrode-lab-bench-res');
    expect(readResults(half)).toBeUndefined();
    const foreign = join(dir, 'foreign.json');
    writeFileSync(foreign, '{"kind":"something-else"}');
    expect(readResults(foreign)).toBeUndefined();
    expect(readResults(join(dir, 'absent.json'))).toBeUndefined();
  });
});

describe('a trial too large for the checker', () => {
  it('says what, how large, and what to change; it is never "ok"', async () => {
    const { tooLargeReason, CHECK_BUDGET_BYTES } = await import('../../src/bench/safetyRun.js');
    const r = tooLargeReason(['client0/history.t0.jsonl (1255 MB)']);
    expect(r).toMatch(/client0\/history\.t0\.jsonl \(1255 MB\)/);
    expect(r).toMatch(/nothing was judged/);
    expect(r).toMatch(/NODE_OPTIONS=--max-old-space-size=/);
    // a sixth of this process's heap limit
    const { getHeapStatistics } = await import('node:v8');
    expect(CHECK_BUDGET_BYTES).toBe(Math.floor(getHeapStatistics().heap_size_limit / 6));
  });
});
