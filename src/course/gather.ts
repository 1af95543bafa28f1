/**
 * The work folder's files: the course record (lab.json), and the evidence a
 * check reads, copied from where the exercise's labs recorded it (the lab
 * state folder, bench and incident run folders). A source that is gone (the
 * lab was taken down) leaves what an earlier check copied in place.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { LabPaths, RunPaths } from '../edges/paths.js';
import { Plan } from '../core/plan.js';
import { listRuns, readResults } from '../bench/store.js';
import { CrashInfo } from '../bench/types.js';
import { COURSE_RECORD_KIND, CourseRecord, CoursePaths, CrashEvidence, Evidence, RunEvidence, parseStatsReadings, statsLogFile } from './evidence.js';
import { LabDef } from './registry.js';
import { writeAtomic } from '../edges/files.js';

/** The small files of a crash folder (never the core). */
export const CRASH_FILES = ['crash.json', 'backtrace.txt', 'bpf.json', 'log.tail', 'dmesg.txt', 'explain.txt'] as const;
/** The files of a run's profiles/ folder the evidence keeps. */
const PROFILE_FILE = /\.(svg|folded)$/;

export function loadRecord(work: CoursePaths): CourseRecord | undefined {
  if (!existsSync(work.recordFile)) return undefined;
  try {
    const r = JSON.parse(readFileSync(work.recordFile, 'utf8')) as CourseRecord;
    return r.kind === COURSE_RECORD_KIND ? r : undefined;
  } catch {
    throw new LabError(`${work.recordFile} is unreadable; run \`electrode-lab lab reset\` for that lab to start over`, 'COURSE_RECORD');
  }
}

export function saveRecord(work: CoursePaths, rec: CourseRecord): void {
  writeAtomic(work.recordFile, JSON.stringify(rec, null, 2) + '\n');
}

/** Bench and incident runs of the exercise's labs under runsDir (plus the ones its record names). */
export function runFoldersOf(def: LabDef, runsDir: string, rec?: CourseRecord): RunPaths[] {
  const out: RunPaths[] = [];
  for (const id of listRuns(runsDir)) {
    // a run being written reads as undefined
    const r = readResults(join(runsDir, id, 'results.json'));
    if (r && def.runLabs.includes(r.lab)) out.push(new RunPaths(runsDir, id));
  }
  if (rec?.runDir && existsSync(join(rec.runDir, 'results.json')) && !out.some((r) => r.root === rec.runDir)) {
    out.push(new RunPaths(dirname(rec.runDir), basename(rec.runDir)));
  }
  return out;
}

/** The files of the project folder (`cwd`) the exercise's commands wrote: LabDef.projectFiles. */
export function projectFilesOf(def: LabDef, cwd: string): string[] {
  const prefix = def.projectFiles?.prefix;
  if (!prefix || !existsSync(cwd)) return [];
  return readdirSync(cwd, { withFileTypes: true }).filter((e) => e.isFile() && e.name.startsWith(prefix)).map((e) => join(cwd, e.name));
}

/** Copies the exercise's evidence from this machine into the work folder. */
export function gatherEvidence(def: LabDef, work: CoursePaths, home: string, runsDir: string, cwd = process.cwd()): void {
  for (const f of projectFilesOf(def, cwd)) {
    mkdirSync(work.filesDir, { recursive: true });
    copyFileSync(f, join(work.filesDir, basename(f)));
  }
  const lab = new LabPaths(home, def.spec.name);
  if (existsSync(lab.planFile)) {
    mkdirSync(work.labDir, { recursive: true });
    copyFileSync(lab.planFile, work.planFile);
  }
  if (existsSync(lab.logsDir)) {
    for (const node of readdirSync(lab.logsDir)) {
      const log = lab.processLog(node, 'replica');
      if (!existsSync(log)) continue;
      mkdirSync(dirname(work.replicaLog(node)), { recursive: true });
      copyFileSync(log, work.replicaLog(node));
    }
    if (existsSync(statsLogFile(lab))) copyFileSync(statsLogFile(lab), work.statsFile);
  }
  for (const run of runFoldersOf(def, runsDir, loadRecord(work))) {
    const dest = join(work.runsDir, run.id);
    mkdirSync(dest, { recursive: true });
    copyFileSync(run.resultsJson, join(dest, 'results.json'));
    // bench --profile's flame graphs and folded stacks (not perf.data: large, and useless without this machine's symbols)
    const profiles = join(run.root, 'profiles');
    if (existsSync(profiles)) {
      for (const f of readdirSync(profiles).filter((x) => PROFILE_FILE.test(x))) {
        mkdirSync(join(dest, 'profiles'), { recursive: true });
        copyFileSync(join(profiles, f), join(dest, 'profiles', f));
      }
    }
    if (!existsSync(run.crashesDir)) continue;
    for (const d of readdirSync(run.crashesDir)) {
      const to = join(dest, 'crashes', d);
      mkdirSync(to, { recursive: true });
      for (const f of CRASH_FILES) if (existsSync(join(run.crashesDir, d, f))) cpSync(join(run.crashesDir, d, f), join(to, f));
    }
  }
}

const readOr = (file: string, dflt = '') => (existsSync(file) ? readFileSync(file, 'utf8') : dflt);

function loadRun(dir: string): RunEvidence | undefined {
  const results = readResults(join(dir, 'results.json'));
  if (!results) return undefined;
  const crashes: CrashEvidence[] = [];
  const cdir = join(dir, 'crashes');
  if (existsSync(cdir)) {
    for (const d of readdirSync(cdir).sort()) {
      const f = join(cdir, d);
      let info: CrashInfo;
      try {
        info = JSON.parse(readFileSync(join(f, 'crash.json'), 'utf8')) as CrashInfo;
      } catch {
        continue;
      }
      let bpf: CrashEvidence['bpf'] = {};
      try {
        bpf = JSON.parse(readOr(join(f, 'bpf.json'), '{}')) as CrashEvidence['bpf'];
      } catch {
        /* keep {} */
      }
      crashes.push({ dir: `crashes/${d}`, info, backtrace: readOr(join(f, 'backtrace.txt')), bpf, logTail: readOr(join(f, 'log.tail')), dmesg: readOr(join(f, 'dmesg.txt')) });
    }
  }
  return { id: basename(dir), results, crashes };
}

/** Reads a work (or handed-in) folder. */
export function loadEvidence(work: CoursePaths): Evidence {
  const ev: Evidence = { logs: {}, stats: [], runs: [] };
  const rec = loadRecord(work);
  if (rec) ev.record = rec;
  if (existsSync(work.planFile)) ev.plan = JSON.parse(readFileSync(work.planFile, 'utf8')) as Plan;
  if (existsSync(work.logsDir)) {
    for (const node of readdirSync(work.logsDir).sort()) {
      if (existsSync(work.replicaLog(node))) ev.logs[node] = readFileSync(work.replicaLog(node), 'utf8');
    }
  }
  ev.stats = parseStatsReadings(readOr(work.statsFile));
  if (existsSync(work.filesDir)) ev.files = Object.fromEntries(readdirSync(work.filesDir).sort().map((n) => [n, readFileSync(join(work.filesDir, n), 'utf8')]));
  if (existsSync(work.runsDir)) {
    const runs = readdirSync(work.runsDir)
      .map((id) => loadRun(join(work.runsDir, id)))
      .filter((r): r is RunEvidence => r !== undefined);
    // run ids start with their UTC start time: sorting them sorts by time
    ev.runs = runs.sort((a, b) => a.id.localeCompare(b.id));
  }
  return ev;
}
