/**
 * The plan of a hosts lab adopts what the machines are: every node's lab
 * address, MAC, NIC and port come from the inventory and from the machines'
 * own reports (hostFactsToNodes), never from plan.ts's arithmetic. Pure.
 */
import { Diagnostic } from '../../core/diagnostics.js';
import { formatCidr, formatIpv4, maskOf, parseCidr } from '../../core/ipv4.js';
import { NodeRole, Plan, nodePort } from '../../core/plan.js';
import { MAX_XDP_MTU, MIN_MTU } from '../../core/spec.js';
import { HostNicFacts, isUnicastMac, normalizeMac } from './facts.js';
import { checkLabIp, Collector, isInt } from './inventoryFields.js';
import { Inventory, SshTarget } from './inventoryShape.js';

export interface HostNode {
  name: string;
  role: NodeRole;
  index: number;
  /** Lab IPv4 address (no prefix; the prefix is network.prefix). */
  ip: string;
  mac: string;
  /** The lab NIC's name on its machine. */
  ifname: string;
  /** UDP port of the node's process: plan.ts's rule (nodePort) on the inventory's base port. */
  port: number;
  ssh: SshTarget;
  /** machine: the NIC has the address already; inventory: the provider must add it (`ip addr add <ip>/<prefix> dev <ifname>`) and remove it on down. */
  ipSource: 'machine' | 'inventory';
  /** The NIC's MTU before tuning. */
  mtu: number;
  driver?: string;
  kernel?: string;
}

export interface HostNetwork {
  cidr: string;
  netmask: string;
  prefix: number;
  /** The lab MTU: the inventory's, else the one all machines already agree on. */
  mtu: number;
  basePort: number;
}

export interface AdoptionResult {
  nodes?: HostNode[];
  network?: HostNetwork;
  cluster?: { n: number; f: number; quorum: number };
  diagnostics: Diagnostic[];
}

/**
 * The adoption step: the inventory plus what each machine reported about its
 * lab NIC (keyed by node name) -> the lab's nodes and network, or every
 * disagreement. Pure and deterministic.
 */
export function hostFactsToNodes(inventory: Inventory, facts: Readonly<Record<string, HostNicFacts | undefined>>): AdoptionResult {
  const c = new Collector();
  const out: HostNode[] = [];
  const cidrs = new Map<string, string[]>();
  for (const node of inventory.nodes) {
    const at = `nodes[${node.entry}] (${node.name}, ${node.ssh.host})`;
    const f = facts[node.name];
    if (!f) {
      c.add('HOST_NO_FACTS', at, 'the preflight did not report this machine', 'check that it is reachable: ssh to it and run `ip -j addr show`');
      continue;
    }
    const mac = normalizeMac(f.mac);
    if (!mac || !isUnicastMac(mac)) c.add('HOST_BAD_MAC', `${at}: mac=${f.mac}`, 'the machine reported no usable MAC for its lab NIC', 'the lab NIC must be an Ethernet device');
    else if (node.nic.mac && node.nic.mac !== mac) c.add('HOST_MAC_MISMATCH', at, `the inventory says MAC ${node.nic.mac}, ${f.ifname} has ${mac}`, 'fix nic.mac in the inventory (or the nic.name that picked this NIC)');
    if (node.nic.name && node.nic.name !== f.ifname) c.add('HOST_IFNAME_MISMATCH', at, `the inventory says NIC ${node.nic.name}, the machine's is ${f.ifname}`, 'fix nic.name in the inventory');
    let ip: string | undefined;
    let ipSource: HostNode['ipSource'] = 'machine';
    if (f.ip !== undefined) {
      ip = checkLabIp(c, 'HOST_BAD_IP', f.ip, `${at}: ip`);
      if (ip && node.ip && ip !== node.ip) c.add('HOST_IP_MISMATCH', at, `the inventory says ${node.ip}, ${f.ifname} has ${ip}`, 'fix ip in the inventory, or drop it to adopt the machine\'s address');
    } else if (node.ip) {
      ip = node.ip;
      ipSource = 'inventory';
    } else {
      c.add('HOST_NO_IP', at, `${f.ifname} has no IPv4 address`, 'state the lab address with `ip:` in the inventory (the provider adds it), or configure the NIC');
    }
    if (f.mtu !== undefined && (!isInt(f.mtu) || f.mtu < 68)) c.add('HOST_BAD_MTU', `${at}: mtu=${f.mtu}`, 'not an MTU', 'check `ip link show` on the machine');
    if (f.mtu === undefined) c.add('HOST_MTU_UNKNOWN', at, `the preflight did not report ${f.ifname}'s MTU`, 'report it (ip -j addr show includes it)');
    if (ip) {
      const s = formatCidr(parseCidr(ip)!);
      cidrs.set(s, [...(cidrs.get(s) ?? []), node.name]);
    }
    if (!ip || !mac || f.mtu === undefined) continue;
    out.push({
      name: node.name,
      role: node.role,
      index: node.index,
      ip: ip.split('/')[0]!,
      mac,
      ifname: f.ifname,
      port: nodePort(inventory.basePort, node.role, node.index),
      ssh: node.ssh,
      ipSource,
      mtu: f.mtu,
      ...(f.driver ? { driver: f.driver } : {}),
      ...(f.kernel ? { kernel: f.kernel } : {}),
    });
  }
  if (cidrs.size > 1) {
    c.add('HOST_MIXED_SUBNETS', 'lab network', `the lab NICs are in ${cidrs.size} subnets: ${[...cidrs].map(([s, names]) => `${s} (${names.join(', ')})`).join('; ')}`, 'all nodes must be on one LAN and subnet; check nic.name picks the experiment NIC, not the control network');
  }
  for (const [key, what] of [['ip', 'lab IP'], ['mac', 'MAC']] as const) {
    const seen = new Map<string, string>();
    for (const n of out) {
      const first = seen.get(n[key]);
      if (first) c.add(key === 'ip' ? 'HOST_DUP_IP' : 'HOST_DUP_MAC', n.name, `same ${what} as ${first} (${n[key]})`, 'two inventory entries reach the same machine, or the NICs are misconfigured');
      else seen.set(n[key], n.name);
    }
  }
  let mtu = inventory.mtu;
  if (mtu === undefined && out.length) {
    const mtus = [...new Set(out.map((n) => n.mtu))].sort((a, b) => a - b);
    if (mtus.length > 1) {
      c.add('HOST_MTU_MISMATCH', 'lab network', `the lab NICs have MTUs ${out.map((n) => `${n.name}=${n.mtu}`).join(', ')}`, 'set `mtu:` in the inventory; tuning sets it on every NIC');
    } else if (mtus[0]! > MAX_XDP_MTU || mtus[0]! < MIN_MTU) {
      c.add('HOST_MTU_UNSUITABLE', `mtu=${mtus[0]}`, mtus[0]! > MAX_XDP_MTU ? `native XDP refuses MTUs above ${MAX_XDP_MTU} on most drivers` : `below the IPv4 minimum of ${MIN_MTU}`, 'set `mtu: 3000` (Electrode) or `mtu: 1500` in the inventory');
    } else mtu = mtus[0];
  }
  if (c.d.length || mtu === undefined) return { diagnostics: c.d };
  const cidr = parseCidr([...cidrs.keys()][0]!)!;
  return {
    nodes: out,
    network: { cidr: formatCidr(cidr), netmask: formatIpv4(maskOf(cidr.prefix)), prefix: cidr.prefix, mtu, basePort: inventory.basePort },
    cluster: inventory.cluster,
    diagnostics: [],
  };
}

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
