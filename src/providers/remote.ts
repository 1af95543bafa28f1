/**
 * What a node reached over SSH does, whoever made the machine (the vagrant
 * provider's VMs, the hosts provider's machines): processes started with
 * setsid/nohup and tracked by PID and start time, "alive", "port bound",
 * SIGTERM-then-SIGKILL, and files copied out as base64. Shell snippets that
 * run as root on the node; `sh` runs one there.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gdbArgv } from '../core/argv.js';
import { until } from '../edges/proc.js';
import type { FoundCore } from './provider.js';
import { LabError } from '../core/diagnostics.js';
import { PlanNode } from '../core/plan.js';
import { RunOptions, RunResult, shellQuote } from '../edges/runner.js';
import type { ProcessRecord } from '../edges/state.js';

export type RemoteShell = (script: string, opts?: RunOptions) => Promise<RunResult>;

export const REMOTE_STOP_GRACE_S = 5;
/** Where remote nodes write cores (their core_pattern while a bench runs), and the largest core copied out to a run folder. */
export const GUEST_CORES_DIR = '/var/tmp/electrode-lab/cores';
export const GUEST_CORE_COPY_MAX = 256 * 1024 * 1024;

export type RemoteExec = (argv: string[], opts?: RunOptions) => Promise<RunResult>;

/** True on the node while the process exists, is not a zombie and is still the one we started (start time). */
export function aliveScript(rec: Pick<ProcessRecord, 'pid' | 'startTime'>): string {
  const st = rec.startTime ? ` && [ "$(cut -d' ' -f22 /proc/${rec.pid}/stat)" = ${shellQuote([rec.startTime])} ]` : '';
  return `[ -r /proc/${rec.pid}/stat ] && ! grep -q '^[0-9]* ([^)]*) [ZX]' /proc/${rec.pid}/stat${st}`;
}

/** Starts argv detached on the node, output appended to logFile there; returns pid and start time. */
export async function remoteSpawn(sh: RemoteShell, node: PlanNode, name: string, argv: string[], logFile: string, dryRun: boolean): Promise<ProcessRecord> {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`process name '${name}' must be letters, digits, _ . -`);
  const line = `mkdir -p ${shellQuote([dirname(logFile)])} && cd / && setsid nohup ${shellQuote(argv)} >>${shellQuote([logFile])} 2>&1 </dev/null & pid=$!; echo $pid; cut -d' ' -f22 /proc/$pid/stat 2>/dev/null || true`;
  const r = await sh(line);
  const [pidLine, start] = r.stdout.trim().split('\n');
  const pid = Number(pidLine);
  if (!dryRun && !(pid > 0)) throw new LabError(`${node.name}: could not start ${name}: ${r.stderr.trim() || r.stdout.trim()}`, 'SPAWN_FAILED');
  return { node: node.name, name, pid, argv, logFile, ...(start ? { startTime: start.trim() } : {}) };
}

export async function remoteAlive(sh: RemoteShell, rec: ProcessRecord): Promise<boolean> {
  return (await sh(aliveScript(rec), { check: false })).exitCode === 0;
}

export async function remoteUdpBound(sh: RemoteShell, port: number): Promise<boolean> {
  return (await sh(`ss -Hlun 'sport = :${port}' | grep -q .`, { check: false })).exitCode === 0;
}

/** SIGTERM, wait for it to be gone up to the grace period, then SIGKILL: one round trip. */
export async function remoteStop(sh: RemoteShell, rec: ProcessRecord): Promise<void> {
  const alive = aliveScript(rec);
  await sh(`if ${alive}; then kill -TERM ${rec.pid}; i=0; while ${alive} && [ $i -lt ${REMOTE_STOP_GRACE_S * 10} ]; do sleep 0.1; i=$((i+1)); done; if ${alive}; then kill -KILL ${rec.pid}; fi; fi; true`, { check: false }).catch(() => undefined);
}

export async function remoteSignal(sh: RemoteShell, rec: ProcessRecord, sig: string): Promise<void> {
  await sh(`if ${aliveScript(rec)}; then kill -${sig.replace(/^SIG/, '')} ${rec.pid}; fi; true`, { check: false });
}

/** The file's tail (at most maxBytes) to this host, base64 so binary data survives. False when the node has no such file. */
export async function remoteCopyOut(sh: RemoteShell, remote: string, local: string, dryRun: boolean, maxBytes = 64 * 1024 * 1024): Promise<boolean> {
  const r = await sh(`test -f ${shellQuote([remote])} && tail -c ${maxBytes} ${shellQuote([remote])} | base64 -w0`, { check: false, timeoutMs: 600_000, bulkStdout: true });
  if (r.exitCode !== 0 || dryRun) return false;
  mkdirSync(dirname(local), { recursive: true });
  writeFileSync(local, Buffer.from(r.stdout.trim(), 'base64'));
  return true;
}

/** The core_pattern line that makes a node's kernel write cores where remoteFindCore looks. */
export function coresPatternScript(): string {
  return `mkdir -p ${GUEST_CORES_DIR} && echo '${GUEST_CORES_DIR}/core.%e.%p' > /proc/sys/kernel/core_pattern`;
}

/**
 * A process that died on a remote node: gdb runs there (on that node's own
 * binary, whichever way it was built) and the core is copied out (base64)
 * when it is at most GUEST_CORE_COPY_MAX bytes; a larger one stays, named in
 * the note.
 */
export async function remoteFindCore(exec: RemoteExec, node: PlanNode, rec: ProcessRecord, binary: string, hostCoresDir: string): Promise<FoundCore> {
  const comm = basename(binary).slice(0, 15);
  const path = `${GUEST_CORES_DIR}/core.${comm}.${rec.pid}`;
  const ex = (argv: string[], timeoutMs = 60_000, bulkStdout = false) => exec(argv, { check: false, timeoutMs, bulkStdout });
  // the kernel finishes writing the core before the process is reaped: a few checks suffice
  const there = await until(async () => (await ex(['test', '-s', path])).exitCode === 0, 10_000, 500);
  if (!there) return {};
  const gdb = await ex(gdbArgv(binary, path), 180_000);
  const backtraceText = gdb.exitCode === null && !gdb.stdout ? `gdb did not run on ${node.name} (${gdb.stderr.trim()})\n` : gdb.stdout + (gdb.stderr ? `\n--- gdb stderr ---\n${gdb.stderr}` : '');
  const size = Number((await ex(['stat', '-c', '%s', path])).stdout.trim());
  if (!(size > 0 && size <= GUEST_CORE_COPY_MAX)) {
    return { backtraceText, coreNote: `the core (${size} bytes) stays on ${node.name} at ${path}: larger than ${GUEST_CORE_COPY_MAX} bytes to copy` };
  }
  const b64 = await ex(['base64', '-w0', path], 600_000, true);
  const bytes = Buffer.from(b64.stdout.trim(), 'base64');
  if (b64.exitCode !== 0 || bytes.length !== size) {
    return { backtraceText, coreNote: `copying the core out of ${node.name} failed (${b64.stderr.trim() || `${bytes.length} of ${size} bytes`}); it stays at ${path}` };
  }
  mkdirSync(hostCoresDir, { recursive: true });
  const host = join(hostCoresDir, `core.${comm}.${rec.pid}`);
  writeFileSync(host, bytes);
  await ex(['rm', '-f', path]);
  return { core: { path: host, comm, pid: rec.pid }, backtraceText };
}

/**
 * The node's state into destDir: its kernel log and identity, links and
 * addresses, and the TC filters on its lab NIC (when known). What
 * Provider.collect writes into a crash folder's node/.
 */
export async function collectRemote(exec: RemoteExec, destDir: string, ifname: string | undefined): Promise<void> {
  mkdirSync(destDir, { recursive: true });
  const grab = async (file: string, argv: string[]) => {
    const r = await exec(argv, { check: false });
    writeFileSync(join(destDir, file), r.stdout + (r.stderr ? `\n# stderr:\n${r.stderr}` : ''));
  };
  await grab('dmesg.txt', ['dmesg']);
  await grab('uname.txt', ['uname', '-a']);
  await grab('ip-link.txt', ['ip', '-d', '-s', 'link', 'show']);
  await grab('ip-addr.txt', ['ip', 'addr', 'show']);
  if (ifname) {
    await grab('tc-egress.txt', ['tc', 'filter', 'show', 'dev', ifname, 'egress']);
    await grab('tc-ingress.txt', ['tc', 'filter', 'show', 'dev', ifname, 'ingress']);
  }
}
