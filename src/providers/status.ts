/**
 * What `status` shows per node, the parts every provider shares: the eBPF
 * attached to the lab NIC (read with the node's own ip/tc) and the record.
 */
import { Plan, PlanNode } from '../core/plan.js';
import { RunResult } from '../edges/runner.js';
import { xdpPrograms } from '../core/xdp.js';
import { NodeStatus } from './provider.js';

/** eBPF attached to a node's NIC, from `ip -d -j link show` and `tc filter show ... egress` (and `ingress`). */
export function parseAttachedBpf(ipLinkJson: string, tcEgressText: string, tcIngressText = ''): string[] {
  const out: string[] = [];
  for (const p of xdpPrograms(ipLinkJson)) out.push(`xdp(${p.mode}) ${p.name ?? '?'} id ${p.id ?? '?'}`);
  // "filter protocol all pref 49152 bpf chain 0 handle 0x1 p.o:[tc] direct-action not_in_hw id 150 name el_tc tag ..."
  // (the line without `handle` is the chain header, not a program)
  for (const [dir, text] of [['egress', tcEgressText], ['ingress', tcIngressText]] as const) {
    for (const line of text.split('\n')) {
      if (!/\bbpf\b/.test(line) || !/\bhandle\b/.test(line)) continue;
      const name = /\bname (\S+)/.exec(line)?.[1] ?? /\bhandle \S+ (\S+)/.exec(line)?.[1] ?? '?';
      const id = /\bid (\d+)/.exec(line)?.[1];
      out.push(`tc ${dir} ${name}${id ? ` id ${id}` : ''}`);
    }
  }
  return out;
}

/** The programs on `ifname`, asked inside the node; `link` is ip's answer (its exit code says whether the NIC exists). */
export async function attachedBpfOn(exec: (argv: string[]) => Promise<RunResult>, ifname: string): Promise<{ bpf: string[]; link: RunResult }> {
  const link = await exec(['ip', '-d', '-j', 'link', 'show', 'dev', ifname]);
  const egress = await exec(['tc', 'filter', 'show', 'dev', ifname, 'egress']);
  const ingress = await exec(['tc', 'filter', 'show', 'dev', ifname, 'ingress']);
  return { bpf: parseAttachedBpf(link.stdout, egress.stdout, ingress.stdout), link };
}

/** One status row: the plan's facts about the node plus what the provider found. */
export function nodeStatus(n: PlanNode, found: Pick<NodeStatus, 'state' | 'processes' | 'bpf'> & Partial<Pick<NodeStatus, 'kernel' | 'detail'>>): NodeStatus {
  return { node: n.name, role: n.role, ip: n.ip, mac: n.mac, port: n.port, ...found, ...(found.kernel ? { kernel: found.kernel } : {}), ...(found.detail ? { detail: found.detail } : {}) };
}

export type { Plan };
