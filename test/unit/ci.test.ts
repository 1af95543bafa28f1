/** The README's test command and .ci/run's must be the same command, so CI runs what users run. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');

/** Command lines of a shell script: no comments, no blank lines, no `set`/`cd` housekeeping. */
function commands(script: string): string[] {
  return script
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !/^(set|cd) /.test(l));
}

describe('CI and README agree', () => {
  const run = commands(read('.ci/run'));
  const readme = read('README.md');

  it('.ci/run is strict, runs .ci/setup, then one test command', () => {
    expect(read('.ci/run')).toMatch(/^#!\/usr\/bin\/env bash\n/);
    expect(read('.ci/run')).toContain('set -euo pipefail');
    expect(run).toHaveLength(2);
    expect(run[0]).toBe('.ci/setup');
  });

  it("the README's quick start runs `.ci/setup && <the same test command>`", () => {
    const testCmd = run[1]!;
    const lines = readme.split('\n').map((l) => l.trim());
    expect(lines).toContain(`.ci/setup && ${testCmd}`);
    // and that command exists in package.json
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(testCmd).toMatch(/^npm test$|^npm run \S+$/);
    const script = testCmd === 'npm test' ? 'test' : testCmd.split(' ')[2]!;
    expect(pkg.scripts[script]).toMatch(/vitest run/);
  });

  it("the README's main job starts a lab and benchmarks it, after .ci/setup", () => {
    expect(readme).toContain('.ci/setup && npx electrode-lab up 3 --provider netns && npx electrode-lab bench --replicas 3');
  });

  it('.ci/setup installs the base packages and every package in .ci/packages.txt, and builds', () => {
    const setup = read('.ci/setup');
    for (const p of ['make', 'gcc', 'clang', 'llvm', 'libbpf-dev', 'bpftool', 'libelf-dev', 'zlib1g-dev', 'iproute2', 'ethtool', 'util-linux', 'procps', 'gdb', 'python3']) {
      expect(setup).toMatch(new RegExp(`[( ]${p}[ )\\n]`));
    }
    expect(setup).toContain('.ci/packages.txt');
    expect(setup).toContain('npm ci');
    expect(setup).toContain('npm run build');
  });
});
