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
  if (last) parts.push(last.ok ? `checked: all ${last.total} right` : `checked: ${last.right}/${last.total} right`);
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
