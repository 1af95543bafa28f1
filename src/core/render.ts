/**
 * Files rendered from the plan (pure). The replica config uses the `f <n>` /
 * `replica <ip>:<port>` format of the Electrode/specpaxos code, so course
 * material still reads right. The peer table is what the eBPF loader reads.
 */
import { Plan, replicas } from './plan.js';
import { DEFAULT_CLIENT_TABLE } from './spec.js';

export function planJson(plan: Plan): string {
  return JSON.stringify(plan, null, 2) + '\n';
}

/**
 * `f <f>`, one `replica <ip>:<port>` line per replica in index order, then
 * `mtu <bytes>`: the leader keeps every Prepare within one frame, since TC
 * cannot fan out IP fragments and XDP does not see whole datagrams in them;
 * then `max-clients <n>`: what decides a replicated outcome is here, read
 * alike by every replica, never a per-replica flag.
 */
export function replicaConfig(plan: Plan): string {
  const lines = [`f ${plan.cluster.f}`];
  for (const r of replicas(plan)) lines.push(`replica ${r.ip}:${r.port}`);
  lines.push(`mtu ${plan.network.mtu}`);
  // plans saved before the key existed used the replica's default
  lines.push(`max-clients ${(plan.spec as Partial<typeof plan.spec>).maxClients ?? DEFAULT_CLIENT_TABLE}`);
  return lines.join('\n') + '\n';
}

/**
 * Peer table for bpf/el-loader:
 *   # comment lines
 *   cluster <n> <f>
 *   peer <index> <ipv4> <mac> <port>
 */
export function peerTable(plan: Plan): string {
  const lines = [
    `# electrode-lab peer table for lab '${plan.lab}': generated from the plan, do not edit`,
    `cluster ${plan.cluster.n} ${plan.cluster.f}`,
  ];
  for (const r of replicas(plan)) lines.push(`peer ${r.index} ${r.ip} ${r.mac} ${r.port}`);
  return lines.join('\n') + '\n';
}
