/**
 * The architecture's shape (issue 22), checked on every run: no import
 * cycles in src/ (madge, test/tools/cycles.cjs), no src file above 400 lines
 * but the ones named here with the reason, no C function above 80 lines in
 * native/src and bpf/ outside tests (the awk counter both Makefiles use), and
 * no import upward across the layers src/'s folders name (ARCHITECTURE.md).
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/edges/paths.js';

const ROOT = projectRoot();
/** Still too long, and why: each is an open step of issue 22. */
const TOO_LONG_YET: Record<string, string> = {};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

/**
 * The layers, lowest first: a module may import its own folder and any lower
 * layer, never a higher one or a sibling of the same rank. providers/names.ts
 * is the core's list of providers (pure, no imports): it lives with the
 * providers so that adding one touches one folder.
 */
const LAYERS: string[][] = [['core'], ['check', 'edges'], ['images'], ['providers'], ['lab'], ['bench'], ['upstream'], ['course'], ['commands'], ['cli.ts']];

function layerOf(rel: string): { rank: number; unit: string } {
  if (rel === 'providers/names.ts') return { rank: 0, unit: 'core' };
  for (const [rank, units] of LAYERS.entries()) {
    for (const unit of units) if (rel === unit || rel.startsWith(unit + '/')) return { rank, unit };
  }
  throw new Error(`${rel} is in no layer: put it in one of src/'s folders (test/unit/layout.test.ts LAYERS)`);
}

/** Every relative import of a src file, as paths relative to src/. */
function importsOf(srcRoot: string, file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => relative(srcRoot, resolve(dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
}

/** The imports that go up, or sideways to a sibling of the same rank. */
export function layerViolations(srcRoot: string): string[] {
  const bad: string[] = [];
  for (const file of files(srcRoot).filter((f) => f.endsWith('.ts'))) {
    const from = relative(srcRoot, file);
    const a = layerOf(from);
    for (const to of importsOf(srcRoot, file)) {
      const b = layerOf(to);
      if (b.rank > a.rank || (b.rank === a.rank && b.unit !== a.unit)) bad.push(`${from} (${a.unit}) imports ${to} (${b.unit})`);
    }
  }
  return bad;
}

describe('layout', () => {
  it('no import goes up across the layers src/ names, and the core stays pure', () => {
    const src = join(ROOT, 'src');
    expect(layerViolations(src)).toEqual([]);
    // the rule sees imports: every folder is reached, and the layers are all in use
    const used = new Set(files(src).filter((f) => f.endsWith('.ts')).map((f) => layerOf(relative(src, f)).unit));
    expect([...used].sort()).toEqual(LAYERS.flat().sort());
    // pure: the core and the checkers touch no file, process or socket
    const impure = files(join(src, 'core')).concat(files(join(src, 'check'))).filter((f) => /from 'node:/.test(readFileSync(f, 'utf8')));
    expect(impure.map((f) => relative(src, f))).toEqual([]);
  });

  it('the layer rule catches an upward import (negative control)', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'el-layers-'));
    try {
      mkdirSync(join(tmp, 'core'));
      mkdirSync(join(tmp, 'bench'));
      writeFileSync(join(tmp, 'core', 'plan.ts'), "import { runBench } from '../bench/run.js';\n");
      writeFileSync(join(tmp, 'bench', 'run.ts'), "import { planLab } from '../core/plan.js';\n");
      expect(layerViolations(tmp)).toEqual(['core/plan.ts (core) imports bench/run.ts (bench)']);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('no import cycles in src/', async () => {
    const r = await execa('node', [join(ROOT, 'test', 'tools', 'cycles.cjs'), join(ROOT, 'src')], { reject: false });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    // madge ran over the sources (it exits 1 on a cycle)
    expect(r.stdout).toMatch(/Processed \d{2,} files/);
  }, 60_000);

  it('every test file sits in the tier folder that says what it needs (test/README.md)', () => {
    const tiers = new Set(['unit', 'process', 'root', 'vm']);
    const misplaced = files(join(ROOT, 'test')).filter((f) => f.endsWith('.test.ts')).map((f) => relative(join(ROOT, 'test'), f)).filter((f) => !tiers.has(f.split('/')[0]!) || f.split('/').length !== 2);
    expect(misplaced).toEqual([]);
    expect(readFileSync(join(ROOT, 'test', 'README.md'), 'utf8')).toMatch(/`process\/`[\s\S]*`root\/`[\s\S]*`vm\/`/);
  });

  it('no src file above 400 lines but those named with their reason', () => {
    const long = files(join(ROOT, 'src')).filter((f) => f.endsWith('.ts')).map((f) => [relative(ROOT, f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 400);
    expect(long.map(([f]) => f).filter((f) => !TOO_LONG_YET[f])).toEqual([]);
  });

  it('no C function above 80 lines in native/src; in bpf/ only the probe tool main', async () => {
    const native = await execa('make', ['-s', '-C', join(ROOT, 'native'), 'long-functions']);
    expect(native.stdout).toMatch(/^0 over 80 lines/m);
    const bpf = await execa('make', ['-s', '-C', join(ROOT, 'bpf'), 'long-functions']);
    expect(bpf.stdout.split('\n').filter((l) => /^\s*\d+ \S+ \S+:\d+$/.test(l)).map((l) => l.trim().split(/\s+/).slice(1).join(' '))).toEqual(['main tests/el-probe.c:100']);
  });
});
