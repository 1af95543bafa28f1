/**
 * Lab 04 holds the crash explanations back while the exercise runs
 * (src/course/holdback.ts): the crash folder loses explain.txt and crash.json
 * its explanation, the work folder keeps them, and a passing check or
 * `lab hint 04 --explanations` puts them back. Real files in a temp home.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CrashInfo } from '../../src/bench/types.js';
import { CoursePaths, newRecord } from '../../src/course/evidence.js';
import { saveRecord } from '../../src/course/gather.js';
import { heldNote, holdExplanation, holdingLab, holdsBack, releaseExplanations } from '../../src/course/holdback.js';
import { findLab } from '../../src/course/registry.js';
import { RunPaths } from '../../src/edges/paths.js';

const tmp = mkdtempSync(join(tmpdir(), 'el-holdback-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const lab04 = findLab('04');
const WHY = ['the replica died in VRReplica::HandleDoViewChange (vr/replica.cc:1154-1161): a pointer into a loop copy'];

function crashFolder(run: RunPaths, node: string, pid: number): CrashInfo {
  const info: CrashInfo = { node, process: 'upstream-replica', pid, signal: 'SIGSEGV', topFrames: ['HandleDoViewChange'], dir: `crashes/${node}-${pid}`, explanation: WHY };
  const dir = join(run.root, info.dir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'explain.txt'), WHY.join('\n') + '\n');
  writeFileSync(join(dir, 'crash.json'), JSON.stringify({ ...info, variant: 'scenario-broadcast' }));
  return info;
}

describe('crash explanations held back by a course lab', () => {
  it('only lab 04, only after lab start, until a check passes or they are asked for', () => {
    const rec = newRecord(lab04.slug, lab04.spec.name);
    expect(holdsBack(lab04, undefined)).toBe(false); // no `lab start 04`: a normal run keeps them
    expect(holdsBack(lab04, rec)).toBe(true);
    expect(holdsBack(lab04, { ...rec, checks: [{ at: '', right: 20, total: 23, ok: false }] })).toBe(true);
    expect(holdsBack(lab04, { ...rec, checks: [{ at: '', right: 23, total: 23, ok: true }] })).toBe(false);
    expect(holdsBack(lab04, { ...rec, explanationsShown: true })).toBe(false);
    expect(holdsBack(findLab('02'), newRecord('02-five-and-seven', 'lab02'))).toBe(false);
  });

  it('holdingLab reads the record of the lab the run is on', () => {
    const home = join(tmp, 'home1');
    expect(holdingLab(home, 'lab04')).toBeUndefined();
    saveRecord(CoursePaths.of(home, lab04.slug), newRecord(lab04.slug, 'lab04'));
    expect(holdingLab(home, 'lab04')?.def.id).toBe('04');
    expect(holdingLab(home, 'lab')).toBeUndefined(); // any other lab keeps its explanations
  });

  it('moves explain.txt and the explanation into the work folder, and puts them back', () => {
    const work = CoursePaths.of(join(tmp, 'home2'), lab04.slug);
    const run = new RunPaths(join(tmp, 'runs'), '20261207T060000Z-lab04');
    const a = crashFolder(run, 'replica3', 13);
    const b = crashFolder(run, 'replica4', 14);
    const held = [a, b].map((c) => holdExplanation(lab04, work, run, c));
    expect(held[0]).toEqual({ ...a, explanation: undefined, explanationHeld: heldNote(lab04) });
    expect(held[0]!.explanation).toBeUndefined();
    expect(heldNote(lab04)).toMatch(/`electrode-lab lab check 04` passing, or `electrode-lab lab hint 04 --explanations`/);
    const dirA = join(run.root, a.dir);
    expect(existsSync(join(dirA, 'explain.txt'))).toBe(false);
    const jsonA = JSON.parse(readFileSync(join(dirA, 'crash.json'), 'utf8')) as Record<string, unknown>;
    expect(jsonA.explanation).toBeUndefined();
    expect(jsonA).toMatchObject({ variant: 'scenario-broadcast', explanationHeld: heldNote(lab04) });
    expect(readFileSync(join(work.root, 'held', `${run.id}.json`), 'utf8')).toContain('HandleDoViewChange');
    // a crash without an explanation is left as it is
    const plain: CrashInfo = { ...a, dir: 'crashes/x-1', explanation: undefined };
    expect(holdExplanation(lab04, work, run, plain)).toBe(plain);

    const back = releaseExplanations(work);
    expect(back.map((x) => x.dir)).toEqual([dirA, join(run.root, b.dir)]);
    expect(readFileSync(join(dirA, 'explain.txt'), 'utf8')).toBe(WHY.join('\n') + '\n');
    const again = JSON.parse(readFileSync(join(dirA, 'crash.json'), 'utf8')) as Record<string, unknown>;
    expect(again).toMatchObject({ explanation: WHY, variant: 'scenario-broadcast' });
    expect(again.explanationHeld).toBeUndefined();
    expect(existsSync(join(work.root, 'held'))).toBe(false);
    expect(releaseExplanations(work)).toEqual([]);
  });

  it('a run folder deleted since is skipped on release', () => {
    const work = CoursePaths.of(join(tmp, 'home3'), lab04.slug);
    const run = new RunPaths(join(tmp, 'runs3'), '20261207T061000Z-lab04');
    holdExplanation(lab04, work, run, crashFolder(run, 'replica3', 23));
    rmSync(run.root, { recursive: true, force: true });
    expect(releaseExplanations(work)).toEqual([]);
  });
});
