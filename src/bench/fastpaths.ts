/**
 * Attaching exactly one arm's fast paths on every replica, detaching them,
 * and reading the eBPF state for crash folders. Uses the bpf helper's
 * src/bpf.ts when it is there; the loader's command line (el-loader
 * attach/detach/show, run inside the node) is the agreed contract either way.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { switchPeerPass } from '../bpf.js';
import { projectRoot } from '../paths.js';
import { PlanNode, replicas } from '../plan.js';
import { BenchLab } from './lab.js';
import { ArmDef } from './types.js';

export function loaderPath(root = projectRoot()): string {
  return join(root, 'bpf', 'build', 'el-loader');
}

/** Why bpf arms cannot run here, or undefined when they can. */
export function fastPathsUnavailable(root = projectRoot()): string | undefined {
  if (!existsSync(loaderPath(root))) return 'needs the eBPF loader bpf/build/el-loader: run `make -C bpf`';
  return undefined;
}

export function attachArgv(loader: string, lab: BenchLab, node: PlanNode, arm: ArmDef): string[] {
  const argv = [loader, 'attach', '--pin-dir', node.pinDir, '--peers', lab.paths.peerTableFile, '--index', String(node.index)];
  // VMs find the NIC by the plan's MAC; in a namespace the name is fixed by the plan
  if (lab.plan.provider === 'netns') argv.push('--ifname', node.ifname);
  else argv.push('--ifmac', node.mac);
  if (arm.broadcast) argv.push('--broadcast');
  if (arm.quorum) argv.push('--quorum');
  if (arm.reply) argv.push('--reply');
  return argv;
}

export function detachArgv(loader: string, lab: BenchLab, node: PlanNode): string[] {
  return [loader, 'detach', '--pin-dir', node.pinDir, ...(lab.plan.provider === 'netns' ? ['--ifname', node.ifname] : ['--ifmac', node.mac])];
}

export async function attachArm(lab: BenchLab, arm: ArmDef, loader = loaderPath()): Promise<void> {
  for (const node of replicas(lab.plan)) {
    // stale pins of a crashed trial are replaced by the loader; detach first anyway so each arm starts clean
    await lab.provider.exec(lab.plan, node, detachArgv(loader, lab, node), lab.pctx, { check: false });
    await lab.provider.exec(lab.plan, node, attachArgv(loader, lab, node, arm), lab.pctx);
    // netns: without it the switch-side veth drops the fast reply's native XDP_TX frames (src/bpf.ts)
    await switchPeerPass(lab.plan, node, lab.pctx, true);
  }
}

export async function detachAll(lab: BenchLab, loader = loaderPath()): Promise<string[]> {
  const problems: string[] = [];
  for (const node of replicas(lab.plan)) {
    const r = await lab.provider.exec(lab.plan, node, detachArgv(loader, lab, node), lab.pctx, { check: false });
    if (r.exitCode !== 0) problems.push(`${node.name}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    await switchPeerPass(lab.plan, node, lab.pctx, false).catch((e: Error) => problems.push(`${node.name}: ${e.message}`));
  }
  return problems;
}

/** `el-loader show --json` inside the node: attached programs, xdp mode, el_ctrl, el_config, stats. */
export async function bpfStateOf(lab: BenchLab, node: PlanNode, loader = loaderPath()): Promise<unknown> {
  const r = await lab.provider.exec(lab.plan, node, [loader, 'show', '--pin-dir', node.pinDir, '--json'], lab.pctx, { check: false, timeoutMs: 15_000 });
  if (r.exitCode !== 0) return { error: r.stderr.trim() || `exit ${r.exitCode}`, argv: r.argv };
  try {
    return JSON.parse(r.stdout) as unknown;
  } catch {
    return { raw: r.stdout };
  }
}
