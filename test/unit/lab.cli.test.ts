/**
 * `electrode-lab lab ...` through the built CLI, on nothing that needs root
 * or namespaces: listing, hints remembered one at a time, bad input (exit 2,
 * nothing changed), an instructor's check of a handed-in folder, and `down`
 * after a bench removed its lab.
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundaryLine, startHow } from '../../src/course/logs.js';
import { logTimeFields } from '../../src/core/logline.js';
import { planFromInputs } from '../../src/core/plan.js';
import { RunPaths } from '../../src/edges/paths.js';
import { CoursePaths, newRecord } from '../../src/course/evidence.js';
import { saveRecord } from '../../src/course/gather.js';
import { holdExplanation, holdingLab } from '../../src/course/holdback.js';
import { findLab } from '../../src/course/registry.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const home = mkdtempSync(join(tmpdir(), 'el-labcli-'));
const runs = mkdtempSync(join(tmpdir(), 'el-labcli-runs-'));

function cli(...args: string[]) {
  return execa('node', [CLI, ...args], { reject: false, env: { ELECTRODE_LAB_HOME: home, ELECTRODE_LAB_RUNS: runs, CI: 'true' } });
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does it)`);
});
afterAll(() => {
  rmSync(home, { recursive: true, force: true });
  rmSync(runs, { recursive: true, force: true });
});

describe('lab list and hints', () => {
  it('lists every lab with its time, prerequisites and state', async () => {
    const r = await cli('lab', 'list');
    expect(r.exitCode).toBe(0);
    const [table, footer] = r.stdout.split('\n\n');
    expect(table!.split('\n')).toHaveLength(8);
    // where the state behind STATE lives, and what `lab reset` removes (state from an earlier clone shows here too)
    expect(footer).toBe([
      `state on this machine (not in the clone): work folders ${join(home, 'course')}/<lab>/ (checks, hints, evidence), labs ${join(home, 'labs')}/<name>/, run folders ${runs}/;`,
      '`electrode-lab lab reset <lab>` removes those of one exercise. Kept: your answers.yaml, and the upstream builds lab 04 caches in',
      `${join(home, 'upstream-builds')}/ (shared by every lab; remove the folder to build again)`,
    ].join('\n'));
    expect(r.stdout).toMatch(/^02-five-and-seven\s+why 5 and 7 replicas crashed\s+60 min\s+01\s+not started$/m);
    const j = JSON.parse((await cli('lab', 'list', '--json')).stdout) as { id: string; name: string }[];
    expect(j.map((x) => `${x.id}:${x.name}`)).toEqual(['01:lab01', '02:lab02', '03:lab03', '04:lab04', '05:lab05', '06:lab06', '07:lab07']);
  });
  it('gives one hint at a time, remembers them in the work folder, then lists them all', async () => {
    const seen: string[] = [];
    for (let i = 1; i <= 4; i++) {
      const r = await cli('lab', 'hint', '05');
      expect(r.stdout).toMatch(new RegExp(`^hint ${i} of 4 \\(05-crash-hunt\\): `));
      seen.push(r.stdout);
    }
    expect(new Set(seen).size).toBe(4);
    const rec = JSON.parse(readFileSync(join(home, 'course', '05-crash-hunt', 'lab.json'), 'utf8')) as { hintsShown: number };
    expect(rec.hintsShown).toBe(4);
    const all = await cli('lab', 'hint', '05');
    expect(all.stdout).toMatch(/^all 4 hints for 05-crash-hunt are shown:\n {2}1\. /);
    expect((await cli('lab', 'list')).stdout).toMatch(/05-crash-hunt .*4 hint\(s\) shown/);
  });
});

describe('lab 04 holds crash explanations back until they are asked for', () => {
  it('lab hint 04 --explanations puts explain.txt back and prints it; later runs keep theirs', async () => {
    const lab04 = findLab('04');
    const work = CoursePaths.of(home, lab04.slug);
    saveRecord(work, newRecord(lab04.slug, 'lab04'));
    const run = new RunPaths(runs, '20261207T060000Z-lab04');
    const dir = join(run.root, 'crashes', 'replica3-13');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'explain.txt'), 'the replica died in VRReplica::HandleDoViewChange\n');
    writeFileSync(join(dir, 'crash.json'), '{}');
    holdExplanation(lab04, work, run, { node: 'replica3', process: 'upstream-replica', pid: 13, signal: 'SIGSEGV', topFrames: [], dir: 'crashes/replica3-13', explanation: ['the replica died in VRReplica::HandleDoViewChange'] });
    expect(existsSync(join(dir, 'explain.txt'))).toBe(false);
    const r = await cli('lab', 'hint', '04', '--explanations');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(`the crash explanations, back in their folders (explain.txt); later runs keep theirs:\n  ${dir}/explain.txt\n    why: the replica died in VRReplica::HandleDoViewChange`);
    expect(readFileSync(join(dir, 'explain.txt'), 'utf8')).toMatch(/HandleDoViewChange/);
    expect(holdingLab(home, 'lab04')).toBeUndefined();
    const again = await cli('lab', 'hint', '04', '--explanations');
    expect(again.stdout).toMatch(/^lab 04 held no explanation back/);
  });
  it('a lab that holds nothing back says so and changes nothing', async () => {
    const r = await cli('lab', 'hint', '02', '--explanations');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/lab 02 holds no explanations back \(only 04 do\); run `electrode-lab lab hint 02` for its hints/);
    expect(existsSync(join(home, 'course', '02-five-and-seven', 'lab.json'))).toBe(false);
  });
});

describe('bad input: exit 2, nothing started', () => {
  it('an unknown lab lists the labs', async () => {
    const r = await cli('lab', 'start', '99');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/LAB_UNKNOWN lab 99: no such course lab; the labs are 01 \(01-view-change\), 02/);
  });
  it('--seed is for the crash hunt only, and a seed is a number', async () => {
    expect((await cli('lab', 'start', '01', '--seed', '3')).stderr).toMatch(/BAD_OPTION --seed: lab 01 plants nothing/);
    expect((await cli('lab', 'start', '05', '--seed', 'x')).exitCode).toBe(2);
    expect(existsSync(join(home, 'labs'))).toBe(false);
  });
  it('--dry-run says what lab start would do', async () => {
    const r = await cli('--dry-run', 'lab', 'start', '02');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/would run: electrode-lab up 7 --provider netns --name lab02 --subnet 10\.79\.2\.0\/24/);
    expect(existsSync(join(home, 'labs'))).toBe(false);
  });
  it('a misspelt key and broken YAML are named with the file', async () => {
    const f = join(home, 'typo.yaml');
    writeFileSync(f, 'diagnosis:\n  faults: stale-view\n');
    const r = await cli('lab', 'check', '05', '--answers', f);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/ANSWERS_UNKNOWN_KEY .*typo\.yaml: diagnosis\.faults: not a key of this lab; did you mean diagnosis\.fault\?/);
    writeFileSync(f, 'diagnosis: [\n');
    expect((await cli('lab', 'check', '05', '--answers', f)).stderr).toMatch(/ANSWERS_YAML/);
  });
  it('--dir needs a folder that exists', async () => {
    const r = await cli('lab', 'check', '01', '--dir', join(home, 'nope'));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/does not exist; give the folder a student handed in/);
  });
});

describe('an instructor checks a handed-in folder', () => {
  it('reads only that folder: its answers and its evidence', async () => {
    const dir = join(home, 'alice-01');
    const plan = planFromInputs([{ name: 'lab01', replicas: 3, provider: 'netns', subnet: '10.79.1.0/24' }]);
    mkdirSync(join(dir, 'evidence', 'lab'), { recursive: true });
    writeFileSync(join(dir, 'evidence', 'lab', 'plan.json'), JSON.stringify(plan));
    const t = 1_796_000_000;
    const l = (dt: number, i: number, m: string) => `${logTimeFields(t + dt)} replica${i} info: ${m}`;
    const how = startHow({ fastPaths: 'none', xdp: 'auto', log: 'debug' });
    for (const [i, extra] of [[1, [l(3, 1, 'no word from leader 0 for 410 ms'), l(3.1, 1, 'view 1 normal (elected), leader 1 (me), last op 3, commit 3')]], [2, [l(3.2, 2, 'view 1 normal (StartView), leader 1, last op 3, commit 3')]]] as const) {
      mkdirSync(join(dir, 'evidence', 'lab', 'logs', `replica${i}`), { recursive: true });
      writeFileSync(join(dir, 'evidence', 'lab', 'logs', `replica${i}`, 'replica.log'), [boundaryLine(new Date(t * 1000), how), l(0.1, i, `replica ${i} ready on x`), ...extra].join('\n') + '\n');
    }
    const answers = {
      normal_case: { prepare_type: 3, prepare_ok_type: 4, prepare_oks_needed: 1, explain: 'the leader votes for itself', heartbeat_ms: 50, without_heartbeats: 'a view change would start' },
      leader_kill: { first_to_notice: 'replica1', new_view: 1, new_leader: 'replica1', old_view_last_op: 3, timeline: 'replica1 saw nothing, sent StartViewChange, got a DoViewChange, sent StartView', logs_carried_by: 'DoViewChange', winning_log: 'the highest normal view and op', client_found_leader: 'it resent to all replicas' },
    };
    writeFileSync(join(dir, 'answers.yaml'), JSON.stringify(answers));
    const ok = await cli('lab', 'check', '01', '--dir', dir, '--json');
    expect(ok.exitCode, ok.stdout).toBe(0);
    const v = JSON.parse(ok.stdout) as { ok: boolean; items: { key: string; status: string }[] };
    expect(v.ok).toBe(true);
    expect(v.items).toHaveLength(16);
    // an instructor's check records nothing in the student's folder
    expect(existsSync(join(dir, 'lab.json'))).toBe(false);
    writeFileSync(join(dir, 'answers.yaml'), JSON.stringify({ ...answers, leader_kill: { ...answers.leader_kill, new_leader: 'replica2' } }));
    const bad = await cli('lab', 'check', '01', '--dir', dir);
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toMatch(/WRONG +leader_kill\.new_leader: you wrote replica2; the leader of view v is replica v % n/);
  });
});

describe('down after a bench removed its lab', () => {
  it('says the bench took it down instead of only "no saved plan"', async () => {
    mkdirSync(join(runs, '20261201T000000Z-lab0gone'), { recursive: true });
    writeFileSync(join(runs, '20261201T000000Z-lab0gone', 'results.json'), JSON.stringify({ kind: 'electrode-lab-bench-results', lab: 'lab0gone', records: [] }));
    const r = await cli('down', '--name', 'lab0gone');
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/lab 'lab0gone' is not up: a bench \(the last was run 20261201T000000Z-lab0gone\) takes down the lab it created when it ends, unless `bench --keep-lab`/);
    expect(r.stdout).toMatch(/lab 'lab0gone' was already down \(nothing was left\): the last bench on it, run 20261201T000000Z-lab0gone/);
    const other = await cli('down', '--name', 'lab0never');
    expect(other.stdout).toContain("lab 'lab0never' is down (nothing was left)");
  });
});

describe('start', () => {
  it('takes --xdp-mode and says that it marks each run in the logs', async () => {
    const r = await cli('start', '--help');
    expect(r.stdout).toMatch(/--xdp-mode <mode>[\s\S]*"native", "generic", "auto"/);
    expect(r.stdout).toMatch(/electrode-lab start: run <ISO time>/);
    expect((await cli('start', '--xdp-mode', 'fast')).exitCode).toBe(2);
  });
});
