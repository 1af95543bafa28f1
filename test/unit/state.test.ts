/** The lab state folder (save/load/list) and progress output selection. */
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/diagnostics.js';
import { LabPaths } from '../../src/edges/paths.js';
import { NO_FACTS, planFromInputs } from '../../src/core/plan.js';
import { PlainProgress, SpinnerProgress, makeProgress } from '../../src/edges/progress.js';
import { probeHostFacts } from '../../src/edges/probe.js';
import { listLabs, loadPlan, loadProcessRecords, loadState, newState, removeLabState, saveLabFiles, saveProcessRecord, saveState } from '../../src/edges/state.js';

const home = mkdtempSync(join(tmpdir(), 'el-state-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('lab state folder', () => {
  const plan = planFromInputs([{ name: 'st', replicas: 5, subnet: '10.60.0.0/24' }], NO_FACTS);
  const paths = new LabPaths(home, 'st');

  it('saves plan.json and the rendered files, and loads the plan back unchanged', () => {
    saveLabFiles(paths, plan);
    saveState(paths, { ...newState(plan), phase: 'up' });
    expect(loadPlan(paths)).toEqual(plan);
    expect(readFileSync(paths.replicaConfigFile, 'utf8')).toMatch(/^f 2\nreplica 10\.60\.0\.10:51000\n/);
    expect(readFileSync(paths.peerTableFile, 'utf8')).toContain('cluster 5 2\n');
    expect(loadState(paths)?.phase).toBe('up');
  });

  it('lists labs that are up, and their subnets feed the overlap check of the next plan', () => {
    expect(listLabs(home)).toEqual([{ name: 'st', provider: 'netns', subnet: '10.60.0.0/24', phase: 'up' }]);
    expect(probeHostFacts(home, { PATH: '' }).labsUp).toEqual([{ name: 'st', subnet: '10.60.0.0/24', provider: 'netns' }]);
    expect(probeHostFacts(home, { PATH: '' }).vagrantAvailable).toBe(false);
  });

  it('process records round-trip; a half-written pid file is skipped', () => {
    saveProcessRecord(paths, { node: 'replica0', name: 'replica', pid: 123, argv: ['replica'], logFile: '/x', startTime: '9' });
    writeFileSync(join(paths.pidsDir, 'replica1.replica.json'), '{"node":');
    expect(loadProcessRecords(paths).map((r) => r.pid)).toEqual([123]);
  });

  it('a plan of another schema is refused with the command that fixes it', () => {
    writeFileSync(paths.planFile, JSON.stringify({ ...plan, schema: 99 }));
    expect(() => loadPlan(paths)).toThrow(LabError);
    expect(() => loadPlan(paths)).toThrow(/electrode-lab down --name st/);
    writeFileSync(paths.planFile, '{');
    expect(() => loadPlan(paths)).toThrow(/unreadable/);
  });

  it('removeLabState removes the whole folder; loading then says "not up" by returning nothing', () => {
    removeLabState(paths);
    expect(existsSync(paths.root)).toBe(false);
    expect(loadPlan(paths)).toBeUndefined();
    expect(listLabs(home)).toEqual([]);
  });
});

describe('progress', () => {
  it('plain lines when stdout or stderr is not a TTY or when CI is set; a spinner only on TTYs outside CI', () => {
    const both = { stdout: true, stderr: true };
    expect(makeProgress({}, { stdout: false, stderr: false })).toBeInstanceOf(PlainProgress);
    // `| tee`: the results go through a pipe, the progress would spin on the terminal out of step with them
    expect(makeProgress({}, { stdout: false, stderr: true })).toBeInstanceOf(PlainProgress);
    expect(makeProgress({}, { stdout: true, stderr: false })).toBeInstanceOf(PlainProgress);
    expect(makeProgress({ CI: 'true' }, both)).toBeInstanceOf(PlainProgress);
    expect(makeProgress({}, both)).toBeInstanceOf(SpinnerProgress);
    expect(makeProgress({ CI: 'false' }, both)).toBeInstanceOf(SpinnerProgress);
  });
  it('plain progress prints start and end of each step, and a failed step as failed', async () => {
    const lines: string[] = [];
    const p = new PlainProgress((l) => lines.push(l));
    expect(await p.step('build', async () => 42)).toBe(42);
    await expect(p.step('break', async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(lines.map((l) => l.replace(/\(\d+\.\ds\)/, '(t)'))).toEqual(['- build ...', '✔ build (t)', '- break ...', '✖ break (t)']);
  });
});
