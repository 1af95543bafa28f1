/**
 * Writing the run boundary into every replica's log before a start, on the
 * node itself (the log lives in the node's filesystem: the host's for netns,
 * the guest's for VMs, at the same path).
 */
import { Plan, replicas } from '../plan.js';
import { Provider, ProviderContext } from '../providers/provider.js';
import { boundaryLine } from './logs.js';

export async function markRunStart(plan: Plan, provider: Provider, ctx: ProviderContext, how: string, proc = 'replica', at: Date = new Date()): Promise<void> {
  const line = boundaryLine(at, how);
  for (const node of replicas(plan)) {
    const file = ctx.paths.processLog(node.name, proc);
    await provider.exec(plan, node, ['sh', '-c', 'mkdir -p "$(dirname "$2")" && printf \'%s\\n\' "$1" >> "$2"', 'sh', line, file], ctx);
  }
}
