/**
 * What a course lab's check reads: the evidence the lab recorded, copied
 * into the lab's work folder (which is also what a student hands in), so an
 * instructor's `lab check --dir` sees exactly what the student's saw.
 *
 *   <work>/lab.json                 the course record (start time, seed, hints shown, checks)
 *   <work>/answers.yaml             the answers as last checked
 *   <work>/evidence/lab/plan.json   the exercise lab's plan
 *   <work>/evidence/lab/logs/<node>/replica.log
 *   <work>/evidence/lab/stats.jsonl every `electrode-lab stats` reading
 *   <work>/evidence/runs/<run>/     results.json, crash folders (no cores), profiles/*.svg|folded
 *   <work>/evidence/files/<name>    files the exercise's commands wrote in the project folder
 */
import { join } from 'node:path';
import { NodeBpfStats, NodeBpfState } from '../lab/bpf.js';
import { CrashInfo, ResultsFile } from '../bench/types.js';
import { Plan } from '../core/plan.js';

export const COURSE_RECORD_KIND = 'electrode-lab-course-lab';

/** <home>/course/<slug>/: a lab's work folder (pure getters; gather.ts writes it). */
export class CoursePaths {
  constructor(readonly root: string) {}
  static of(home: string, slug: string): CoursePaths {
    return new CoursePaths(join(home, 'course', slug));
  }
  get recordFile(): string {
    return join(this.root, 'lab.json');
  }
  get answersCopy(): string {
    return join(this.root, 'answers.yaml');
  }
  get verdictFile(): string {
    return join(this.root, 'verdict.txt');
  }
  get evidenceDir(): string {
    return join(this.root, 'evidence');
  }
  get labDir(): string {
    return join(this.evidenceDir, 'lab');
  }
  get planFile(): string {
    return join(this.labDir, 'plan.json');
  }
  get logsDir(): string {
    return join(this.labDir, 'logs');
  }
  replicaLog(node: string): string {
    return join(this.logsDir, node, 'replica.log');
  }
  get statsFile(): string {
    return join(this.labDir, 'stats.jsonl');
  }
  get runsDir(): string {
    return join(this.evidenceDir, 'runs');
  }
  /** Files the exercise's commands wrote in the project folder (LabDef.projectFiles). */
  get filesDir(): string {
    return join(this.evidenceDir, 'files');
  }
}

/** What lab.json holds: the state of one exercise on this machine. */
export interface CourseRecord {
  kind: typeof COURSE_RECORD_KIND;
  version: 1;
  /** The exercise, e.g. `02-five-and-seven`. */
  lab: string;
  /** The electrode-lab lab it runs on, e.g. `lab02`. */
  name: string;
  startedAt: string;
  /** Hints shown so far (`lab hint` shows the next one). */
  hintsShown: number;
  /** `lab hint <lab> --explanations` was asked: the held-back crash explanations are back (src/course/holdback.ts). */
  explanationsShown?: boolean;
  /** Crash hunt: the seed the planted fault is derived from. */
  seed?: string;
  /** Crash hunt: the incident's run folder. */
  runDir?: string;
  /** Every `lab check`, newest last. */
  checks: { at: string; right: number; total: number; ok: boolean; answer?: string }[];
}

export function newRecord(lab: string, name: string, now: Date = new Date()): CourseRecord {
  return { kind: COURSE_RECORD_KIND, version: 1, lab, name, startedAt: now.toISOString(), hintsShown: 0, checks: [] };
}

/** Where `electrode-lab stats` keeps its readings in a lab's state folder. */
export function statsLogFile(paths: { logsDir: string }): string {
  return join(paths.logsDir, 'stats.jsonl');
}

/** One `electrode-lab stats` reading, as `stats` appends it to <lab>/logs/stats.jsonl. */
export interface StatsReading {
  at: string;
  lab: string;
  nodes: NodeBpfStats[];
}

/** The line `stats` appends for a reading. */
export function statsReadingLine(lab: string, nodes: NodeBpfStats[], at: Date = new Date()): string {
  return JSON.stringify({ at: at.toISOString(), lab, nodes } satisfies StatsReading) + '\n';
}

/** stats.jsonl -> readings; a torn last line (a reading cut short) is skipped. */
export function parseStatsReadings(text: string): StatsReading[] {
  const out: StatsReading[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as StatsReading;
      if (Array.isArray(r.nodes)) out.push(r);
    } catch {
      /* half a line */
    }
  }
  return out;
}

export interface CrashEvidence {
  /** `crashes/<node>-<pid>` relative to the run folder. */
  dir: string;
  info: CrashInfo;
  backtrace: string;
  /** bpf.json: the eBPF state at the moment of the crash (or `{attached: false}`). */
  bpf: Partial<NodeBpfState> & { attached?: unknown; note?: string; error?: string };
  logTail: string;
  dmesg: string;
}

export interface RunEvidence {
  id: string;
  results: ResultsFile;
  crashes: CrashEvidence[];
}

export interface Evidence {
  record?: CourseRecord;
  plan?: Plan;
  /** node -> its replica.log */
  logs: Record<string, string>;
  stats: StatsReading[];
  /** Oldest first. */
  runs: RunEvidence[];
  /** name -> text of the project-folder files the exercise wrote (LabDef.projectFiles). */
  files?: Record<string, string>;
}

/** The newest run of a lab (bench runs and incidents record their lab name). */
export function newestRunOf(ev: Evidence, lab: string): RunEvidence | undefined {
  return ev.runs.filter((r) => r.results.lab === lab).at(-1);
}

/** The readings of one node, oldest first. */
export function readingsOf(ev: Evidence, node: string): { at: string; stats: NodeBpfStats }[] {
  return ev.stats.flatMap((r) => r.nodes.filter((n) => n.node === node).map((stats) => ({ at: r.at, stats })));
}
