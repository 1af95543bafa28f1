/**
 * Which kernel a VM lab must run, and whether its VMs run it: the pin (or the
 * box's own kernel with `--kernel box`) against each VM's `uname -r`.
 */
import { boxKernel as boxKernelOf } from '../images/boxes.js';
import { Plan, PlanNode } from '../core/plan.js';
import { RunOptions, RunResult } from '../edges/runner.js';
import { ProviderContext } from './provider.js';

export interface KernelCheck {
  node: string;
  expected: string;
  actual: string;
  ok: boolean;
}

/** What the checks need of the provider: a command in a VM, and its sessions closed after. */
export interface VmShell {
  exec(plan: Plan, node: PlanNode, argv: string[], ctx: ProviderContext, opts?: RunOptions): Promise<RunResult>;
  closeSessions(): void;
}

/** The kernel a lab's VMs must run: its pin, or with `--kernel box` the kernel the box records (undefined when it recorded none). */
export function labKernel(plan: Plan, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return plan.vm.kernel === 'box' ? boxKernelOf(plan.vm.box, env) : plan.vm.kernel;
}

/** The status note of a running VM: its lab NIC, its live kernel (flagged when it drifted from the lab's), a failed fast-path check at up. */
export function vmStatusDetail(o: { ifname: string; kernel?: string; expectedKernel?: string; fastPaths?: string }): string {
  const drifted = o.kernel !== undefined && o.expectedKernel !== undefined && o.kernel !== o.expectedKernel;
  const drift = drifted ? ` DRIFTED from the lab's ${o.expectedKernel} (bench refuses it; \`electrode-lab down\` + \`up\` reinstall the pin)` : '';
  const fp = o.fastPaths && o.fastPaths !== 'ok' ? `, fast paths did not attach at up: ${o.fastPaths}` : '';
  return `lab NIC ${o.ifname}, kernel ${o.kernel ?? '? (uname -r failed)'}${drift}${fp}`;
}

/**
 * Every VM's `uname -r` against the plan's kernel pin (or, with
 * `--kernel box`, against the kernel the box records).
 */
export async function kernelChecks(plan: Plan, ctx: ProviderContext, provider: VmShell): Promise<KernelCheck[]> {
  if (plan.provider !== 'vagrant') return [];
  const expected = labKernel(plan);
  const out: KernelCheck[] = [];
  try {
    for (const n of plan.nodes) {
      const r = await provider.exec(plan, n, ['uname', '-r'], ctx, { check: false }).catch((e: Error) => ({ exitCode: 255, stdout: '', stderr: e.message }));
      const actual = r.exitCode === 0 ? r.stdout.trim() : `unreachable (${(r.stderr || '').trim().split('\n')[0]})`;
      out.push({ node: n.name, expected: expected ?? '(box kernel not recorded)', actual, ok: ctx.runner.dryRun || (expected === undefined ? r.exitCode === 0 : actual === expected) });
    }
  } finally {
    provider.closeSessions();
  }
  return out;
}
