/** What `electrode-lab lab list` says about each course lab on this machine: pure formatting of gathered facts. */
import { CourseRecord } from './evidence.js';
import { LabDef } from './registry.js';

export interface LabMachineFacts {
  /** The exercise's lab has a saved plan (it is up). */
  up: boolean;
  replicas?: number;
  /** Replica processes alive now. */
  running: number;
  record?: CourseRecord;
}

export function labStateText(f: LabMachineFacts): string {
  const parts: string[] = [];
  if (f.up) parts.push(`up, ${f.running}/${f.replicas ?? '?'} replicas running`);
  const last = f.record?.checks.at(-1);
  // with its date: a record an earlier clone left on this machine reads as old, not as this student's
  const when = last?.at ? ` ${last.at.slice(0, 16).replace('T', ' ')}` : '';
  if (last) parts.push(last.ok ? `checked${when}: all ${last.total} right` : `checked${when}: ${last.right}/${last.total} right`);
  else if (f.record) parts.push(`started ${f.record.startedAt.slice(0, 16).replace('T', ' ')}`);
  if (f.record?.hintsShown) parts.push(`${f.record.hintsShown} hint(s) shown`);
  return parts.length ? parts.join('; ') : 'not started';
}

/** The `up` command `lab start` runs for an exercise (printed, and what a person could type instead). */
export function upCommandOf(def: LabDef): string {
  const s = def.spec;
  return `electrode-lab up ${s.replicas} --provider ${s.provider ?? 'netns'} --name ${s.name}${s.subnet ? ` --subnet ${s.subnet}` : ''}`;
}

export function formatLabList(rows: { def: LabDef; state: string }[]): string {
  const head = ['LAB', 'TITLE', 'TIME', 'NEEDS', 'STATE'];
  const body = rows.map(({ def, state }) => [def.slug, def.title, `${def.minutes} min`, def.prerequisites.join(', ') || '-', state]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cols: string[]) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

/** Where the state `lab list` reports lives (outside the clone, so an earlier clone's shows too) and what `lab reset` removes. */
export function stateWhereText(p: { courseDir: string; labsDir: string; runsDir: string; upstreamBuilds: string }): string {
  return [
    `state on this machine (not in the clone): work folders ${p.courseDir}/<lab>/ (checks, hints, evidence), labs ${p.labsDir}/<name>/, run folders ${p.runsDir}/;`,
    '`electrode-lab lab reset <lab>` removes those of one exercise. Kept: your answers.yaml, and the upstream builds lab 04 caches in',
    `${p.upstreamBuilds}/ (shared by every lab; remove the folder to build again)`,
  ].join('\n');
}
