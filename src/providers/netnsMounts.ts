/**
 * A netns node's own mount namespace, next to its network namespace: what
 * the user's upstream Electrode tree needs (its loader pins to fixed paths
 * under /sys/fs/bpf, so every node needs a bpffs of its own). The netns
 * provider owns the commands: it creates them when asked (what to mount is
 * the caller's script), enters them, and removes them in `down`, so the
 * provider never imports the subsystem that uses them.
 *
 * The namespaces persist as bind mounts of their nsfs files under
 * /run/electrode-lab/upstream/<lab>/ (a private mount, so nothing
 * propagates), and are entered with `nsenter --mount` after the provider's
 * `nsenter --net`: every process run in them is in its node's network AND
 * mount namespace, so `down`'s namespace sweep finds them all.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runner } from '../edges/runner.js';
import type { NodeMounts } from './provider.js';

export const NODE_MNT_ROOT = '/run/electrode-lab/upstream';

export function mntDir(lab: string): string {
  return `${NODE_MNT_ROOT}/${lab}`;
}

export function mntFile(lab: string, node: string): string {
  return `${mntDir(lab)}/${node}.mnt`;
}

/** argv run inside the node's mount namespace (compose it inside the provider's exec/spawn). */
export function inNodeArgv(lab: string, node: string, argv: string[], cwd?: string): string[] {
  return ['nsenter', `--mount=${mntFile(lab, node)}`, ...(cwd ? [`--wd=${cwd}`] : []), '--', ...argv];
}

function isMountPoint(dir: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
  } catch {
    return false;
  }
}

/**
 * Creates (or recreates) the mount namespace of each node, running `script`
 * (a shell script for `unshare`) in it; `dirs` are host folders the script
 * binds, created first.
 */
export async function createNodeMounts(runner: Runner, lab: string, nodes: string[], script: string, dirs: string[] = []): Promise<void> {
  const dir = mntDir(lab);
  await destroyNodeMounts(runner, lab);
  await runner.run(['mkdir', '-p', dir]);
  // the nsfs files must sit on a private mount, or binding them would propagate (and loop)
  if (runner.dryRun || !isMountPoint(dir)) {
    await runner.run(['mount', '--bind', dir, dir]);
    await runner.run(['mount', '--make-private', dir]);
  }
  for (const d of dirs) await runner.run(['mkdir', '-p', d]);
  for (const n of nodes) {
    const f = mntFile(lab, n);
    if (!runner.dryRun) writeFileSync(f, '');
    await runner.run(['unshare', `--mount=${f}`, '--propagation', 'private', 'sh', '-c', script]);
  }
}

/** Unmounts and removes every node namespace file of the lab (idempotent; run after its processes are gone). */
export async function destroyNodeMounts(runner: Runner, lab: string): Promise<void> {
  const dir = mntDir(lab);
  if (!existsSync(dir)) return;
  const files = readdirSync(dir).filter((f) => f.endsWith('.mnt'));
  for (const f of files) {
    await runner.run(['umount', join(dir, f)], { check: false });
    await runner.run(['rm', '-f', join(dir, f)], { check: false });
  }
  if (runner.dryRun || isMountPoint(dir)) await runner.run(['umount', dir], { check: false });
  await runner.run(['rmdir', dir], { check: false });
  await runner.run(['rmdir', '--ignore-fail-on-non-empty', NODE_MNT_ROOT], { check: false });
}

export function hasNodeMount(lab: string, node: string): boolean {
  return existsSync(mntFile(lab, node));
}

/** The netns provider's NodeMountsAbility. */
export const netnsNodeMounts: NodeMounts = {
  createNodeMounts: (plan, nodes, script, dirs, ctx) => createNodeMounts(ctx.runner, plan.lab, nodes.map((n) => n.name), script, dirs),
  destroyNodeMounts: (plan, ctx) => destroyNodeMounts(ctx.runner, plan.lab),
  inNodeMounts: (plan, node, argv, cwd) => inNodeArgv(plan.lab, node.name, argv, cwd),
  hasNodeMounts: (plan, node) => hasNodeMount(plan.lab, node.name),
};
