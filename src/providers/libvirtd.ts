/**
 * The libvirt daemons a VM lab needs. On a host without systemd (containers,
 * our machines: REFERENCE.md 5) `up` starts virtlogd and libvirtd itself,
 * once, and records their PIDs in the labs home (libvirt-daemons.json), so
 * that the `down` of the last VM lab, whichever lab that is, stops exactly
 * what an `up` started. With systemd, the unit is the owner: `up` names the
 * one command to run. The decision is pure (libvirtdDecision); the edges
 * read the facts, start, record and stop.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Diagnostic, LabError } from '../core/diagnostics.js';
import { procStartTime, processAlive, until } from '../edges/proc.js';
import { Runner } from '../edges/runner.js';
import { listLabs } from '../edges/state.js';
import { Progress } from './provider.js';

export type DaemonName = 'virtlogd' | 'libvirtd';

/** Start order: libvirtd hands its domains' consoles and logs to virtlogd. */
export const DAEMONS: DaemonName[] = ['virtlogd', 'libvirtd'];

export interface LibvirtdFacts {
  /** `virsh -c qemu:///system version` succeeded. */
  answers: boolean;
  /** systemd is PID 1 (/run/systemd/system exists). */
  systemd: boolean;
  /** Daemons whose pid file names a live process. */
  running: Partial<Record<DaemonName, number>>;
}

export type LibvirtdDecision =
  | { kind: 'ready' }
  | { kind: 'start'; daemons: DaemonName[]; why: string }
  | { kind: 'stop'; diagnostic: Diagnostic };

export function libvirtdDecision(f: LibvirtdFacts, uri: string): LibvirtdDecision {
  if (f.answers) return { kind: 'ready' };
  if (f.systemd) {
    return { kind: 'stop', diagnostic: { code: 'HOST_LIBVIRTD_DOWN', subject: uri, message: 'libvirtd is not answering; systemd owns it on this host', hint: 'run `systemctl start libvirtd` (it starts virtlogd too), then `electrode-lab up` again' } };
  }
  if (f.running.libvirtd) {
    return {
      kind: 'stop',
      diagnostic: { code: 'HOST_LIBVIRTD_STUCK', subject: uri, message: `libvirtd (pid ${f.running.libvirtd}) runs but does not answer`, hint: `if it is still starting, run \`electrode-lab up\` again in a few seconds; else stop it (\`kill ${f.running.libvirtd}\`) and run \`electrode-lab up\` again (it then starts its own)` },
    };
  }
  const daemons = DAEMONS.filter((d) => !f.running[d]);
  return { kind: 'start', daemons, why: `libvirtd is not running and this host has no systemd${f.running.virtlogd ? ` (virtlogd runs, pid ${f.running.virtlogd})` : ''}` };
}

/** A daemon an `up` started. */
export interface StartedDaemon {
  name: DaemonName;
  pid: number;
  /** /proc/<pid>/stat start time: a recycled PID is never signalled. */
  startTime: string;
  /** The lab whose `up` started it. */
  lab: string;
  at: string;
}

export function daemonsRecordFile(home: string): string {
  return join(home, 'libvirt-daemons.json');
}

export function loadStartedDaemons(home: string): StartedDaemon[] {
  try {
    const r = JSON.parse(readFileSync(daemonsRecordFile(home), 'utf8')) as { started?: StartedDaemon[] };
    return Array.isArray(r.started) ? r.started : [];
  } catch {
    return [];
  }
}

export function saveStartedDaemons(home: string, started: StartedDaemon[]): void {
  // the first lab of a fresh home: its folder does not exist yet
  if (started.length) {
    mkdirSync(home, { recursive: true });
    writeFileSync(daemonsRecordFile(home), JSON.stringify({ started }, null, 2) + '\n');
  }
  else rmSync(daemonsRecordFile(home), { force: true });
}

/**
 * What the `down` of `lab` does with the daemons `up` started: stop them when
 * no other VM lab is left, keep them for the others otherwise.
 */
export function daemonsToStop(started: StartedDaemon[], otherVmLabs: string[]): { stop: StartedDaemon[]; keptFor: string[] } {
  if (otherVmLabs.length) return { stop: [], keptFor: otherVmLabs };
  // libvirtd first: it holds virtlogd's clients
  return { stop: [...started].sort((a, b) => DAEMONS.indexOf(b.name) - DAEMONS.indexOf(a.name)), keptFor: [] };
}

const pidFile = (d: DaemonName) => `/run/${d}.pid`;

function pidFrom(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return pid > 0 && processAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The facts, read: one virsh call, the pid files, systemd's run folder. */
export async function libvirtdFacts(runner: Runner, uri: string, env: Record<string, string | undefined>): Promise<LibvirtdFacts> {
  const v = await runner.run(['virsh', '-c', uri, 'version'], { check: false, env });
  const running: LibvirtdFacts['running'] = {};
  for (const d of DAEMONS) {
    const pid = pidFrom(pidFile(d));
    if (pid) running[d] = pid;
  }
  return { answers: v.exitCode === 0, systemd: existsSync('/run/systemd/system'), running };
}

/** Starts the daemons (`-d`: they fork into the background), waits for libvirtd to answer, records them. */
export async function startDaemons(daemons: DaemonName[], o: { runner: Runner; progress: Progress; home: string; lab: string; uri: string; env: Record<string, string | undefined> }): Promise<StartedDaemon[]> {
  const started: StartedDaemon[] = [];
  for (const d of daemons) {
    await o.runner.run([d, '-d'], { env: o.env });
    if (o.runner.dryRun) continue;
    let pid: number | undefined;
    if (!(await until(() => (pid = pidFrom(pidFile(d))) !== undefined, 20_000, 100)) || !pid) {
      throw new LabError(`\`${d} -d\` left no live process in ${pidFile(d)} after 20 s; run it by hand to see why`, 'HOST_LIBVIRTD_START');
    }
    started.push({ name: d, pid, startTime: procStartTime(pid) ?? '', lab: o.lab, at: new Date().toISOString() });
    // recorded at once: a later failure still leaves `down` what to stop
    saveStartedDaemons(o.home, [...loadStartedDaemons(o.home), started.at(-1)!]);
  }
  if (o.runner.dryRun) return started;
  const answered = await until(async () => (await o.runner.run(['virsh', '-c', o.uri, 'version'], { check: false, env: o.env })).exitCode === 0, 30_000, 250);
  if (!answered) throw new LabError(`libvirtd (pid ${started.find((s) => s.name === 'libvirtd')?.pid ?? '?'}) started but ${o.uri} did not answer within 30 s`, 'HOST_LIBVIRTD_START');
  o.progress.info(`started ${started.map((s) => `${s.name} (pid ${s.pid})`).join(' and ')}; the \`down\` of the last VM lab stops them`);
  return started;
}

/**
 * At the `down` of `lab`: stops the daemons an `up` started when no other VM
 * lab is left (by PID, only while the PID is still the process started).
 */
export async function stopDaemonsIfLast(o: { runner: Runner; progress: Progress; home: string; lab: string; vmLab: (provider: string) => boolean }): Promise<void> {
  const started = loadStartedDaemons(o.home);
  if (!started.length) return;
  const others = listLabs(o.home)
    .filter((l) => l.name !== o.lab && o.vmLab(l.provider))
    .map((l) => l.name);
  const { stop, keptFor } = daemonsToStop(started, others);
  if (keptFor.length) {
    o.progress.info(`libvirt daemons left running for lab${keptFor.length > 1 ? 's' : ''} ${keptFor.join(', ')}`);
    return;
  }
  if (o.runner.dryRun) {
    for (const s of stop) await o.runner.run(['kill', '-TERM', String(s.pid)], { check: false });
    return;
  }
  const stopped: string[] = [];
  for (const s of stop) {
    const ours = processAlive(s.pid) && procStartTime(s.pid) === s.startTime;
    if (ours) {
      await o.runner.run(['kill', '-TERM', String(s.pid)], { check: false });
      if (!(await until(() => !processAlive(s.pid), 20_000, 100))) await o.runner.run(['kill', '-KILL', String(s.pid)], { check: false });
      stopped.push(`${s.name} (pid ${s.pid})`);
    }
  }
  saveStartedDaemons(o.home, []);
  if (stopped.length) o.progress.info(`stopped ${stopped.join(' and ')}, which \`up\` started (no VM lab is left)`);
}
