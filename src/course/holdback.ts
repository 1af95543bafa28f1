/**
 * Crash explanations a course lab holds back. Lab 04's goal is to explain
 * the crash from the crash folder, and the explanation electrode-lab writes
 * (`explain.txt`, the `why:` lines of `upstream start` and `crashes`) states
 * most answers outright. While the exercise runs (started with `lab start`,
 * no `lab check` passed, the explanations not asked for with
 * `lab hint <lab> --explanations`), a crash's explanation goes into the work
 * folder instead of the crash folder; passing the check, or asking, puts it
 * back. Runs outside a course lab keep it.
 *
 *   <work>/held/<run id>.json   { runRoot, crashes: [{ dir, explanation }] }
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CrashInfo } from '../bench/types.js';
import { RunPaths } from '../edges/paths.js';
import { CourseRecord, CoursePaths } from './evidence.js';
import { loadRecord } from './gather.js';
import { LABS, LabDef } from './registry.js';

interface HeldRun {
  runRoot: string;
  crashes: { dir: string; explanation: string[] }[];
}

/** Does this record's exercise still hold explanations back? (pure) */
export function holdsBack(def: LabDef, rec: CourseRecord | undefined): boolean {
  return Boolean(def.holdsExplanations && rec && !rec.explanationsShown && !rec.checks.some((c) => c.ok));
}

/** The course lab that holds back the crash explanations of runs on lab `labName` now, if any. */
export function holdingLab(home: string, labName: string): { def: LabDef; work: CoursePaths } | undefined {
  for (const def of LABS) {
    if (def.spec.name !== labName || !def.holdsExplanations) continue;
    const work = CoursePaths.of(home, def.slug);
    if (holdsBack(def, loadRecord(work))) return { def, work };
  }
  return undefined;
}

/** What a held-back crash says in place of its explanation. */
export function heldNote(def: LabDef): string {
  return `held back by lab ${def.id}: explain the crash from this folder; \`electrode-lab lab check ${def.id}\` passing, or \`electrode-lab lab hint ${def.id} --explanations\`, puts explain.txt here`;
}

const heldFile = (work: CoursePaths, runId: string) => join(work.root, 'held', `${runId}.json`);

function readHeld(file: string): HeldRun {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as HeldRun) : { runRoot: '', crashes: [] };
}

/** Moves one crash's explanation from its folder into the work folder; the crash as the run records it from now on (no explanation). */
export function holdExplanation(def: LabDef, work: CoursePaths, run: RunPaths, crash: CrashInfo): CrashInfo {
  const { explanation, ...rest } = crash;
  if (!explanation?.length) return crash;
  const file = heldFile(work, run.id);
  const held = readHeld(file);
  held.runRoot = run.root;
  held.crashes = [...held.crashes.filter((c) => c.dir !== crash.dir), { dir: crash.dir, explanation }];
  mkdirSync(join(work.root, 'held'), { recursive: true });
  writeFileSync(file, JSON.stringify(held, null, 2) + '\n');
  const dir = join(run.root, crash.dir);
  rmSync(join(dir, 'explain.txt'), { force: true });
  const jf = join(dir, 'crash.json');
  if (existsSync(jf)) {
    const { explanation: _gone, ...json } = JSON.parse(readFileSync(jf, 'utf8')) as Record<string, unknown>;
    writeFileSync(jf, JSON.stringify({ ...json, explanationHeld: heldNote(def) }, null, 2) + '\n');
  }
  return { ...rest, explanationHeld: heldNote(def) };
}

/** Puts every held explanation of the exercise back into its crash folder; the folders it wrote (a run deleted since is skipped). */
export function releaseExplanations(work: CoursePaths): { dir: string; explanation: string[] }[] {
  const heldDir = join(work.root, 'held');
  if (!existsSync(heldDir)) return [];
  const out: { dir: string; explanation: string[] }[] = [];
  for (const f of readdirSync(heldDir).filter((x) => x.endsWith('.json')).sort()) {
    const held = readHeld(join(heldDir, f));
    for (const c of held.crashes) {
      const dir = join(held.runRoot, c.dir);
      if (!existsSync(dir)) continue;
      writeFileSync(join(dir, 'explain.txt'), c.explanation.join('\n') + '\n');
      const jf = join(dir, 'crash.json');
      if (existsSync(jf)) {
        const { explanationHeld: _note, ...json } = JSON.parse(readFileSync(jf, 'utf8')) as Record<string, unknown>;
        writeFileSync(jf, JSON.stringify({ ...json, explanation: c.explanation }, null, 2) + '\n');
      }
      out.push({ dir, explanation: c.explanation });
    }
  }
  rmSync(heldDir, { recursive: true, force: true });
  return out;
}
