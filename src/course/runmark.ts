/**
 * Writing the run boundary into every replica's log before a start, on the
 * node itself (the log lives in the node's filesystem: the host's for netns,
 * the guest's for VMs, at the same path).
 */
import type { OpenLab } from '../providers/lab.js';
import { boundaryLine } from './logs.js';

export async function markRunStart(lab: OpenLab, how: string, proc = 'replica', at: Date = new Date()): Promise<void> {
  const line = boundaryLine(at, how);
  for (const node of lab.replicas()) {
    const file = lab.paths.processLog(node.name, proc);
    await node.exec(['sh', '-c', 'mkdir -p "$(dirname "$2")" && printf \'%s\\n\' "$1" >> "$2"', 'sh', line, file]);
  }
}
