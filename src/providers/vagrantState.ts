/**
 * What the Vagrant provider created for a lab (the VMs' ssh targets, their
 * lab NICs, how the binaries got in), kept in the lab's state.json so
 * status, exec and down find them again.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { LabPaths } from '../edges/paths.js';
import { SshTarget } from '../edges/ssh.js';
import { loadResources, loadState, saveResources } from '../edges/state.js';

/** How electrode-lab binaries get into the VMs. */
export type BuildMode = 'guest' | 'host';

export function buildModeFrom(env: NodeJS.ProcessEnv): BuildMode {
  const v = env.ELECTRODE_LAB_VM_BUILD ?? 'guest';
  if (v !== 'guest' && v !== 'host') throw new LabError(`ELECTRODE_LAB_VM_BUILD=${v}: use guest (build in each VM) or host (copy host-built binaries; same-distro guests); \`up --build guest|host\` does the same per lab`, 'BAD_BUILD_MODE');
  return v;
}

export interface VagrantNodeInfo {
  /** The lab NIC inside the VM (found by the plan's MAC). */
  ifname: string;
  /** 'ok', or why the Electrode programs did not attach natively. */
  fastPaths?: string;
}

export interface VagrantResources {
  vagrantDir: string;
  ssh: Record<string, SshTarget>;
  nodes: Record<string, VagrantNodeInfo>;
  buildMode: BuildMode;
  boxKernel?: string;
}

/** What this provider created (VMs' ssh targets, lab NICs, build mode), in the lab's state.json. */
export function loadVagrantResources(paths: LabPaths, env: NodeJS.ProcessEnv): VagrantResources {
  const r = loadResources<VagrantResources>(paths);
  if (r.vagrantDir) return { ssh: {}, nodes: {}, buildMode: buildModeFrom(env), ...r } as VagrantResources;
  // labs created before the record moved into state.json
  try {
    return JSON.parse(readFileSync(join(paths.vagrantDir, 'electrode-lab.json'), 'utf8')) as VagrantResources;
  } catch {
    return { vagrantDir: paths.vagrantDir, ssh: {}, nodes: {}, buildMode: buildModeFrom(env) };
  }
}

export function saveVagrantResources(paths: LabPaths, res: VagrantResources): void {
  // no state file: a dry run (nothing is created, nothing to record)
  if (loadState(paths)) saveResources(paths, res);
}
