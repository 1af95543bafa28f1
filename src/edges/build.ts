/**
 * Where `npm run build` (make -C native, make -C bpf) puts what electrode-lab
 * runs: the ONE place that knows the build output paths. Every provider puts
 * these at the same absolute paths on its nodes (VMs mirror the host), so a
 * path from here works inside any node.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { projectRoot } from './paths.js';
import type { Runner } from './runner.js';

export interface NativeBinaries {
  replica: string;
  client: string;
  /** The floor's UDP echo server. */
  echo: string;
  /** The `forge` nemesis: forged replica messages from the client node (native/src/forge.c). */
  forge: string;
}

/** native/build/{replica,client,echo} (release: -O2, frame pointers). */
export function nativeBinaries(root = projectRoot()): NativeBinaries {
  const b = (name: string) => join(root, 'native', 'build', name);
  return { replica: b('replica'), client: b('client'), echo: b('echo'), forge: b('forge') };
}

/** native/build/asan/*: the sanitizer builds the tests run. */
export function asanBinaries(root = projectRoot()): Omit<NativeBinaries, 'echo' | 'forge'> {
  const b = (name: string) => join(root, 'native', 'build', 'asan', name);
  return { replica: b('replica'), client: b('client') };
}

/** native/build/lab/replica: the course labs' build with planted faults (make -C native lab-faults). */
export function labFaultsReplica(root = projectRoot()): string {
  return join(root, 'native', 'build', 'lab', 'replica');
}

/** Builds native/build/lab/replica (incremental; no other build contains the lab-only switches). */
export async function buildLabFaultsReplica(runner: Runner, root = projectRoot()): Promise<string> {
  const r = await runner.run(['make', '-s', '-C', join(root, 'native'), 'lab-faults'], { check: false, timeoutMs: 300_000 });
  if (r.exitCode !== 0) throw new LabError(`building the lab replica failed (make -C native lab-faults):\n${(r.stderr || r.stdout).trim().split('\n').slice(-6).join('\n')}`, 'NOT_BUILT');
  return labFaultsReplica(root);
}

/** bpf/build/: the loader (its skeletons carry the fast-path objects) and the loose objects. */
export function bpfBuildDir(root = projectRoot()): string {
  return join(root, 'bpf', 'build');
}

export function loaderPath(root = projectRoot()): string {
  return join(bpfBuildDir(root), 'el-loader');
}

/** The check-kernel guest's traffic driver. */
export function probePath(root = projectRoot()): string {
  return join(bpfBuildDir(root), 'el-probe');
}

/** An eBPF object of the bpf/ build, e.g. `el_pass.bpf.o`. */
export function bpfObject(name: string, root = projectRoot()): string {
  return join(bpfBuildDir(root), name);
}

/** What `--build host` copies into VMs (and hosts), relative paths resolved here. */
export function hostArtifacts(root = projectRoot()): string[] {
  const n = nativeBinaries(root);
  return [n.replica, n.client, n.echo, n.forge, loaderPath(root), bpfObject('el_pass.bpf.o', root)];
}

/** Throws naming the build step when a file is missing. */
export function requireBuilt(files: string[], what = 'npm run build'): void {
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length) throw new LabError(`${missing.join(' and ')} missing; build with \`${what}\``, 'NOT_BUILT');
}
