/**
 * Progress and results on one pipe (`electrode-lab ... 2>&1 | tee`): a
 * child process runs the built progress and output modules (dist/src/edges) with
 * stdout and stderr on the same pipe, which the test does not read until
 * the child says it has written everything, so the pipe is full while it
 * writes. Every line must arrive, in the order it was written, and nothing
 * may be lost to the exit.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const DIST = join(import.meta.dirname, '..', '..', 'dist', 'src', 'edges');

beforeAll(() => {
  if (!existsSync(join(DIST, 'output.js'))) throw new Error(`${DIST}/output.js is missing: run \`npm run build\` (npm test does it)`);
});

/** A result larger than a pipe (64 KiB) and the stream buffer behind it. */
const RESULT_BYTES = 1 << 20;

const child = (exitHow: string) => `
import { writeSync } from 'node:fs';
import { makeProgress } from ${JSON.stringify(pathToFileURL(join(DIST, 'progress.js')).href)};
import { outputFlushed, writeOut } from ${JSON.stringify(pathToFileURL(join(DIST, 'output.js')).href)};
const p = makeProgress({});
await p.step('step one', async () => undefined);
writeOut('results begin\\n' + 'r'.repeat(${RESULT_BYTES}) + '\\nresults end\\n');
p.info('a line after the results');
await p.step('step two', async () => undefined);
writeOut('last result\\n');
writeSync(3, 'written\\n');
${exitHow}
`;

/** Runs the child with 2>&1 into one pipe, reading it only after the child has written everything. */
function run(script: string): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const c = spawn('sh', ['-c', 'exec "$0" --input-type=module -e "$1" 2>&1', process.execPath, script], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
    const chunks: Buffer[] = [];
    c.stdout!.pause();
    c.stdout!.on('data', (x: Buffer) => chunks.push(x));
    c.stdio[3]!.on('data', (b: Buffer) => {
      if (b.toString().includes('written')) c.stdout!.resume();
    });
    c.on('error', reject);
    c.on('close', (code) => resolve({ out: Buffer.concat(chunks).toString(), code }));
  });
}

/** The lines, the result's run of r's shortened (a line caught inside it shows as `r… line`). */
const lines = (out: string) => out.split('\n').map((l) => l.replace(/r{64,}/g, 'r…').replace(/\(\d+\.\ds\)/, '(t)')).filter((l) => l !== '' && l !== 'r…');

describe('progress on a pipe shared with the results', () => {
  it('plain lines, each in the order written, none lost to the exit (the CLI waits for the output before process.exit)', async () => {
    const r = await run(child('await outputFlushed();\nprocess.exit(0);'));
    expect(r.code, r.out.slice(0, 2000)).toBe(0);
    expect(lines(r.out)).toEqual(['- step one ...', '✔ step one (t)', 'results begin', 'results end', 'a line after the results', '- step two ...', '✔ step two (t)', 'last result']);
    expect(r.out).toContain('r'.repeat(RESULT_BYTES));
  }, 30_000);

  it('negative control: without that wait, process.exit loses what the full pipe has not taken', async () => {
    // what the CLI did before (65536 bytes of 1 MiB arrived)
    const r = await run(child('process.exit(0);'));
    expect(r.code).toBe(0);
    expect(r.out.length).toBeLessThan(RESULT_BYTES);
    expect(lines(r.out)).not.toContain('last result');
  }, 30_000);
});
