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
 * What to mount is decided here; the namespaces themselves (create, enter,
 * remove in `down`) are the provider's (NodeMountsAbility, through the lab
 * handle: OpenLab.createNodeMounts, LabNode.inOwnMounts).
 */
import type { LabNode, OpenLab } from '../providers/lab.js';
import { Plan, PlanNode } from '../core/plan.js';
import { UPSTREAM_PIN_DIR } from './patch.js';

/** The one folder every node's /sys/fs/bpf is, when the shared-bpffs mistake is reproduced. */
export function sharedBpffsDir(plan: Plan): string {
  return `${plan.bpf.pinRoot}/upstream-shared`;
}

/** What the node's namespace mounts over the copy of the host's mounts (a shell script for `unshare`). */
export function nodeMountScript(plan: Plan, opts: { sharedBpffs: boolean; hostsFile?: string }): string {
  const bpffs = opts.sharedBpffs ? `mount --bind ${sharedBpffsDir(plan)} ${UPSTREAM_PIN_DIR}` : `mount -t bpf bpf ${UPSTREAM_PIN_DIR}`;
  return [bpffs, ...(opts.hostsFile ? [`mount --bind ${opts.hostsFile} /etc/hosts`] : [])].join(' && ');
}

/** Creates (or recreates) the mount namespace of every node that runs upstream processes. */
export function createNodeMounts(lab: OpenLab, nodes: LabNode[], opts: { sharedBpffs: boolean; hostsFile?: string }): Promise<void> {
  return lab.createNodeMounts(nodes, nodeMountScript(lab.plan, opts), opts.sharedBpffs ? [sharedBpffsDir(lab.plan)] : []);
}

/** bpffs' own preloaded iterators, in every instance: not pins of anybody's. */
const PRELOADED = new Set(['maps.debug', 'progs.debug']);

/** What the node has pinned in its /sys/fs/bpf (names), or undefined when it has no namespace. */
export async function nodePins(lab: OpenLab, node: PlanNode): Promise<string[] | undefined> {
  const n = lab.node(node);
  if (!n.hasOwnMounts()) return undefined;
  const r = await lab.runner.run(n.inOwnMounts(['ls', '-1', UPSTREAM_PIN_DIR]), { check: false });
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
export async function upstreamBpfState(lab: OpenLab, node: PlanNode, sharedBpffs: boolean): Promise<UpstreamNodeBpf> {
  const pins = (await nodePins(lab, node)) ?? [];
  const out: UpstreamNodeBpf = { node: node.name, bpffs: sharedBpffs ? 'shared' : 'own', pins };
  if (pins.includes('paxos_ctr_state')) {
    const r = await lab.runner.run(lab.node(node).inOwnMounts(['bpftool', '-j', 'map', 'dump', 'pinned', `${UPSTREAM_PIN_DIR}/paxos_ctr_state`]), { check: false });
    try {
      out.ctrState = JSON.parse(r.stdout);
    } catch {
      out.error = `bpftool map dump paxos_ctr_state: ${(r.stderr || r.stdout).trim().slice(0, 200)}`;
    }
  }
  return out;
}
