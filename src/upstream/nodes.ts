/**
 * Each upstream node's own mount namespace, with its own bpffs at
 * /sys/fs/bpf. Upstream's loader pins to fixed paths (/sys/fs/bpf/paxos_*)
 * and its replica opens them there; the course project's compose file
 * mounted the host's /sys/fs/bpf into every container, so all replicas
 * shared one set of maps. Here a node's pins are its own unless
 * `sharedBpffs` reproduces that mistake on purpose: then every node's
 * /sys/fs/bpf is ONE folder of the lab (under its pin root, removed by
 * `down`). A scenario run as it was also gets Docker's name service: the
 * node's /etc/hosts (in its namespace only) maps the container names.
 *
 * The namespaces persist as bind mounts of their nsfs files under
 * /run/electrode-lab/upstream/<lab>/ (a private mount, so nothing
 * propagates), and are entered with `nsenter --mount` after the provider's
 * `nsenter --net`: every upstream process runs in its node's network AND
 * mount namespace, so `down`'s namespace sweep finds them all.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Plan, PlanNode } from '../plan.js';
import { Runner } from '../runner.js';
import { UPSTREAM_PIN_DIR } from './patch.js';

export const UPSTREAM_MNT_ROOT = '/run/electrode-lab/upstream';

export function mntDir(lab: string): string {
  return `${UPSTREAM_MNT_ROOT}/${lab}`;
}

export function mntFile(lab: string, node: string): string {
  return `${mntDir(lab)}/${node}.mnt`;
}

/** The one folder every node's /sys/fs/bpf is, when the shared-bpffs mistake is reproduced. */
export function sharedBpffsDir(plan: Plan): string {
  return `${plan.bpf.pinRoot}/upstream-shared`;
}

/** argv run inside the node's mount namespace (compose it inside the provider's exec/spawn). */
export function inNodeArgv(lab: string, node: string, argv: string[], cwd?: string): string[] {
  return ['nsenter', `--mount=${mntFile(lab, node)}`, ...(cwd ? [`--wd=${cwd}`] : []), '--', ...argv];
}

/** What the node's namespace mounts over the copy of the host's mounts (a shell script for `unshare`). */
export function nodeMountScript(plan: Plan, opts: { sharedBpffs: boolean; hostsFile?: string }): string {
  const bpffs = opts.sharedBpffs ? `mount --bind ${sharedBpffsDir(plan)} ${UPSTREAM_PIN_DIR}` : `mount -t bpf bpf ${UPSTREAM_PIN_DIR}`;
  return [bpffs, ...(opts.hostsFile ? [`mount --bind ${opts.hostsFile} /etc/hosts`] : [])].join(' && ');
}

function isMountPoint(dir: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
  } catch {
    return false;
  }
}

/** Creates (or recreates) the mount namespace of every node that runs upstream processes. */
export async function createNodeMounts(runner: Runner, plan: Plan, nodes: PlanNode[], opts: { sharedBpffs: boolean; hostsFile?: string }): Promise<void> {
  const dir = mntDir(plan.lab);
  await destroyNodeMounts(runner, plan.lab);
  await runner.run(['mkdir', '-p', dir]);
  // the nsfs files must sit on a private mount, or binding them would propagate (and loop)
  if (runner.dryRun || !isMountPoint(dir)) {
    await runner.run(['mount', '--bind', dir, dir]);
    await runner.run(['mount', '--make-private', dir]);
  }
  if (opts.sharedBpffs) await runner.run(['mkdir', '-p', sharedBpffsDir(plan)]);
  for (const n of nodes) {
    const f = mntFile(plan.lab, n.name);
    if (!runner.dryRun) writeFileSync(f, '');
    await runner.run(['unshare', `--mount=${f}`, '--propagation', 'private', 'sh', '-c', nodeMountScript(plan, opts)]);
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
  await runner.run(['rmdir', '--ignore-fail-on-non-empty', UPSTREAM_MNT_ROOT], { check: false });
}

export function hasNodeMount(lab: string, node: string): boolean {
  return existsSync(mntFile(lab, node));
}

/** bpffs' own preloaded iterators, in every instance: not pins of anybody's. */
const PRELOADED = new Set(['maps.debug', 'progs.debug']);

/** What the node has pinned in its /sys/fs/bpf (names), or undefined when it has no namespace. */
export async function nodePins(runner: Runner, lab: string, node: string): Promise<string[] | undefined> {
  if (!hasNodeMount(lab, node)) return undefined;
  const r = await runner.run(inNodeArgv(lab, node, ['ls', '-1', UPSTREAM_PIN_DIR]), { check: false });
  if (r.exitCode !== 0) return undefined;
  return r.stdout.split('\n').map((s) => s.trim()).filter((s) => s && !PRELOADED.has(s));
}

export interface UpstreamNodeBpf {
  node: string;
  bpffs: 'own' | 'shared';
  pins: string[];
  /** bpftool's dump of paxos_ctr_state (what the replica last told the kernel), when pinned. */
  ctrState?: unknown;
  /** Why a pin could not be read. */
  error?: string;
}

/** The pinned-map state of a node at a moment (crash folders' bpf.json, status). */
export async function upstreamBpfState(runner: Runner, plan: Plan, node: PlanNode, sharedBpffs: boolean): Promise<UpstreamNodeBpf> {
  const pins = (await nodePins(runner, plan.lab, node.name)) ?? [];
  const out: UpstreamNodeBpf = { node: node.name, bpffs: sharedBpffs ? 'shared' : 'own', pins };
  if (pins.includes('paxos_ctr_state')) {
    const r = await runner.run(inNodeArgv(plan.lab, node.name, ['bpftool', '-j', 'map', 'dump', 'pinned', `${UPSTREAM_PIN_DIR}/paxos_ctr_state`]), { check: false });
    try {
      out.ctrState = JSON.parse(r.stdout);
    } catch {
      out.error = `bpftool map dump paxos_ctr_state: ${(r.stderr || r.stdout).trim().slice(0, 200)}`;
    }
  }
  return out;
}
