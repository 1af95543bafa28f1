/**
 * The lab state folder: the saved plan (status, exec, bench and down read it
 * instead of re-planning), the rendered files and the provider's record of
 * what it created, so `down` works from a new shell and after a crash.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { LabPaths } from './paths.js';
import { Plan, PLAN_SCHEMA } from '../core/plan.js';
import { planJson, peerTable, replicaConfig } from '../core/render.js';
import { ProviderName } from '../core/spec.js';
import { writeAtomic } from './files.js';

/** A process the lab started on a node, as saved in its pid file. */
export interface ProcessRecord {
  node: string;
  name: string;
  pid: number;
  argv: string[];
  logFile: string;
  /** /proc/<pid>/stat field 22, to tell our process from a recycled PID. */
  startTime?: string;
  /** How often this node's process was restarted (`restart`): 0 or absent for the first start. */
  incarnation?: number;
}

export type LabPhase = 'creating' | 'up' | 'failed';

export interface LabState {
  lab: string;
  provider: ProviderName;
  phase: LabPhase;
  createdAt: string;
  updatedAt: string;
  /** Provider-specific record of what exists (namespaces, pin root, vagrant dir...). */
  resources: Record<string, unknown>;
}

/** Writes plan.json, files/replica.config and files/peers.table. */
export function saveLabFiles(paths: LabPaths, plan: Plan): void {
  paths.ensureDirs(plan.nodes.map((n) => n.name));
  writeAtomic(paths.planFile, planJson(plan));
  writeAtomic(paths.replicaConfigFile, replicaConfig(plan));
  writeAtomic(paths.peerTableFile, peerTable(plan));
}

export function saveState(paths: LabPaths, state: LabState): void {
  paths.ensureDirs();
  writeAtomic(paths.stateFile, JSON.stringify({ ...state, updatedAt: new Date().toISOString() }, null, 2) + '\n');
}

/**
 * The provider's record of what it created, kept in state.json (`resources`),
 * so `down` finds it from a new shell. Written as it changes (a VM at a time).
 */
export function saveResources(paths: LabPaths, resources: object): void {
  const st = loadState(paths);
  if (!st) throw new LabError(`lab '${paths.lab}' has no state file to record its resources in (${paths.stateFile})`, 'NO_STATE');
  saveState(paths, { ...st, resources: { ...resources } as Record<string, unknown> });
}

export function loadResources<T extends object>(paths: LabPaths): Partial<T> {
  return (loadState(paths)?.resources ?? {}) as Partial<T>;
}

export function newState(plan: Plan): LabState {
  const now = new Date().toISOString();
  return { lab: plan.lab, provider: plan.provider, phase: 'creating', createdAt: now, updatedAt: now, resources: {} };
}

export function loadState(paths: LabPaths): LabState | undefined {
  if (!existsSync(paths.stateFile)) return undefined;
  try {
    return JSON.parse(readFileSync(paths.stateFile, 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

/** The saved plan, or undefined when the lab has none (never up, or already down). */
export function loadPlan(paths: LabPaths): Plan | undefined {
  if (!existsSync(paths.planFile)) return undefined;
  let plan: Plan;
  try {
    plan = JSON.parse(readFileSync(paths.planFile, 'utf8')) as Plan;
  } catch (e) {
    throw new LabError(`${paths.planFile} is unreadable (${(e as Error).message}); run \`electrode-lab down --name ${paths.lab}\` to clean up`, 'STATE_CORRUPT');
  }
  if (plan.schema !== PLAN_SCHEMA) {
    throw new LabError(`${paths.planFile} has plan schema ${plan.schema}, this electrode-lab writes ${PLAN_SCHEMA}; run \`electrode-lab down --name ${paths.lab}\` and up again`, 'STATE_SCHEMA');
  }
  return plan;
}

export function removeLabState(paths: LabPaths): void {
  rmSync(paths.root, { recursive: true, force: true });
}

export interface LabSummary {
  name: string;
  provider: ProviderName;
  subnet: string;
  phase: LabPhase | 'unknown';
}

/** Labs with a saved plan under the home folder (what `up` treats as "up"). */
export function listLabs(home: string): LabSummary[] {
  const dir = LabPaths.labsDir(home);
  if (!existsSync(dir)) return [];
  const out: LabSummary[] = [];
  for (const name of readdirSync(dir).sort()) {
    const paths = new LabPaths(home, name);
    try {
      const plan = loadPlan(paths);
      if (!plan) continue;
      out.push({ name, provider: plan.provider, subnet: plan.network.cidr, phase: loadState(paths)?.phase ?? 'unknown' });
    } catch {
      out.push({ name, provider: 'netns', subnet: '', phase: 'unknown' });
    }
  }
  return out;
}

/** The pid files of processes the lab started (see Provider.spawn). */
export function loadProcessRecords(paths: LabPaths): ProcessRecord[] {
  if (!existsSync(paths.pidsDir)) return [];
  const out: ProcessRecord[] = [];
  for (const f of readdirSync(paths.pidsDir).sort()) {
    if (!f.endsWith('.json')) continue;
    try {
      out.push(JSON.parse(readFileSync(join(paths.pidsDir, f), 'utf8')) as ProcessRecord);
    } catch {
      /* a half-written pid file: the namespace sweep in `down` still catches the process */
    }
  }
  return out;
}

export function saveProcessRecord(paths: LabPaths, rec: ProcessRecord): void {
  paths.ensureDirs();
  writeAtomic(paths.pidFile(rec.node, rec.name), JSON.stringify(rec, null, 2) + '\n');
}

export function removeProcessRecord(paths: LabPaths, rec: Pick<ProcessRecord, 'node' | 'name'>): void {
  rmSync(paths.pidFile(rec.node, rec.name), { force: true });
}
