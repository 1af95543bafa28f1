/**
 * The plan of a hosts lab adopts what the machines are: every node's lab
 * address, MAC, NIC and port come from the inventory and from the machines'
 * own reports (hostFactsToNodes), never from plan.ts's arithmetic. Pure.
 */
import { Diagnostic } from '../../diagnostics.js';
import { Plan } from '../../plan.js';
import { HostNetwork, HostNode } from './inventory.js';

/** The spec's plan (sizes, names, pins) with each node's facts from its machine; diagnostics when the sizes disagree. */
export function adoptHosts(plan: Plan, nodes: HostNode[], network: HostNetwork): { plan?: Plan; diagnostics: Diagnostic[] } {
  const d: Diagnostic[] = [];
  const count = (role: string) => nodes.filter((n) => n.role === role).length;
  const planCount = (role: string) => plan.nodes.filter((n) => n.role === role).length;
  for (const role of ['replica', 'client'] as const) {
    if (count(role) !== planCount(role)) {
      d.push({
        code: 'HOSTS_SIZE',
        subject: `${role}s`,
        message: `the inventory has ${count(role)} ${role}(s), the lab asks for ${planCount(role)}`,
        hint: role === 'replica' ? `run \`up ${count(role)} --provider hosts ...\`, or change the inventory` : `give --clients ${count(role)}, or change the inventory`,
      });
    }
  }
  if (d.length) return { diagnostics: d };
  const byKey = new Map(nodes.map((n) => [`${n.role}/${n.index}`, n]));
  return {
    plan: {
      ...plan,
      network: { ...plan.network, cidr: network.cidr, netmask: network.netmask, prefix: network.prefix, mtu: network.mtu, basePort: network.basePort, gateway: '', switchNs: '', bridge: '' },
      nodes: plan.nodes.map((p) => {
        const h = byKey.get(`${p.role}/${p.index}`)!;
        return { ...p, ip: h.ip, mac: h.mac, ifname: h.ifname, port: h.port, netns: '', switchIf: '', hostname: h.ssh.host, ssh: { ...h.ssh }, ipSource: h.ipSource };
      }),
    },
    diagnostics: [],
  };
}
