/**
 * spec -> plan: ONE pure function. Every address, MAC, port, interface,
 * namespace, pin path, VM size and queue count that anything downstream uses
 * is decided here and nowhere else. No exec, fs or os calls: host facts come
 * in from probe.ts.
 */
import { PROVIDER_TRAITS, defaultProvider } from '../providers/names.js';
import { Diagnostic, DiagnosticsError } from './diagnostics.js';
import { cidrSize, cidrsOverlap, formatCidr, formatIpv4, maskOf, parseCidr, Cidr } from './ipv4.js';
import { LabSpec, ProviderName, SpecInput, normalizeSpec } from './spec.js';

export const PLAN_SCHEMA = 1;
/** First host offset used for nodes; .1 is left for a gateway/host bridge (libvirt). */
export const FIRST_HOST_OFFSET = 10;
export const BPFFS_ROOT = '/sys/fs/bpf/electrode-lab';
/** The one port rule: replica i = base + i, client j = base + CLIENT_PORT_OFFSET + j (hosts labs adopt it too). */
export const CLIENT_PORT_OFFSET = 100;

/** The UDP port a node's process binds. */
export function nodePort(basePort: number, role: NodeRole, index: number): number {
  return basePort + (role === 'replica' ? index : CLIENT_PORT_OFFSET + index);
}

/** The highest port a lab of this size uses. */
export function lastNodePort(basePort: number, replicas: number, clients: number): number {
  return basePort + Math.max(replicas, CLIENT_PORT_OFFSET + clients);
}

/** What probe.ts learns about the host; plain data so planning stays pure. */
export interface HostFacts {
  /** Labs whose state folder says they are up. */
  labsUp: { name: string; subnet: string; provider: ProviderName }[];
  /** vagrant + vagrant-libvirt + libvirt client tools are installed. */
  vagrantAvailable: boolean;
  /** /dev/kvm exists AND boots stock guest kernels (REFERENCE.md 5: not on our machines). */
  kvmUsable: boolean;
  /** IPv4 subnets routed in the root namespace (only matter for providers that touch it). */
  hostSubnets: string[];
}

export const NO_FACTS: HostFacts = { labsUp: [], vagrantAvailable: false, kvmUsable: false, hostSubnets: [] };

export type NodeRole = 'replica' | 'client';

export interface PlanNode {
  /** `replica0`..`replica{N-1}`, `client0`.. */
  name: string;
  role: NodeRole;
  /** Replica index (the `-i` of the replica and the eBPF peer-table key) or client index. */
  index: number;
  ip: string;
  /** Locally administered, lower case, deterministic from lab name, role and index. */
  mac: string;
  /** UDP port the node's process binds. */
  port: number;
  /** Lab-network interface name inside the node (netns); in VMs it is found by MAC. */
  ifname: string;
  /** netns provider: the node's namespace. */
  netns: string;
  /** netns provider: the switch-side veth end (in the switch namespace, on the bridge). */
  switchIf: string;
  /** bpffs folder for this node's pins. */
  pinDir: string;
  /** vagrant provider: the VM's hostname / vagrant machine name; hosts provider: the machine's SSH address. */
  hostname: string;
  /** hosts provider: how to reach the machine (from the inventory). */
  ssh?: { host: string; port: number; user: string; key?: string; jumpHost?: { host: string; port: number; user?: string } };
  /** hosts provider: the lab address was on the NIC already (machine) or is added by up and removed by down (inventory). */
  ipSource?: 'machine' | 'inventory';
}

export interface VmPlan {
  driver: 'kvm' | 'qemu';
  driverReason: string;
  cpus: number;
  memory: number;
  box: string;
  kernel: string;
  /** virtio-net queue pairs: native XDP needs active pairs + vCPUs <= queues (REFERENCE.md 2). */
  queues: number;
  /** libvirt network holding the lab's private network. */
  libvirtNetwork: string;
}

export interface Plan {
  schema: number;
  lab: string;
  provider: ProviderName;
  providerReason: string;
  spec: LabSpec;
  cluster: { n: number; f: number; quorum: number };
  network: {
    cidr: string;
    netmask: string;
    prefix: number;
    gateway: string;
    mtu: number;
    basePort: number;
    /** netns provider: the namespace holding the bridge; nothing goes on the root namespace. */
    switchNs: string;
    bridge: string;
  };
  nodes: PlanNode[];
  vm: VmPlan;
  bpf: { pinRoot: string };
}

/** FNV-1a 32-bit, for deterministic per-lab MAC bytes. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');

/** 02:4c:<lab hash 2 bytes>:<role>:<index>; 0x02 = locally administered unicast. */
export function nodeMac(lab: string, role: NodeRole, index: number): string {
  const h = fnv1a(lab);
  return ['02', '4c', hex2((h >>> 8) & 255), hex2(h & 255), role === 'replica' ? '00' : '01', hex2(index)].join(':');
}

export function labNamespacePrefix(lab: string): string {
  return `el-${lab}-`;
}

/** Queue pairs for virtio-net so that native XDP can attach with all vCPUs' pairs active. */
export function xdpQueues(cpus: number): number {
  return 2 * cpus;
}

export interface PlanResult {
  plan?: Plan;
  diagnostics: Diagnostic[];
}

/** spec (already normalized) + host facts -> plan or diagnostics. Pure and deterministic. */
export function planLab(spec: LabSpec, facts: HostFacts = NO_FACTS): PlanResult {
  const d: Diagnostic[] = [];

  const chosen = spec.provider ? { provider: spec.provider, reason: 'chosen with --provider' } : defaultProvider(facts);
  const provider: ProviderName = chosen.provider;
  const providerReason = chosen.reason;

  const cidr = parseCidr(spec.subnet);
  if (!cidr) {
    d.push({ code: 'SPEC_BAD_SUBNET', subject: `subnet=${spec.subnet}`, message: 'not an IPv4 CIDR', hint: "e.g. '10.77.0.0/24'" });
  }
  const hostsNeeded = FIRST_HOST_OFFSET + spec.replicas + spec.clients;
  if (cidr) {
    // the last address is broadcast
    if (hostsNeeded > cidrSize(cidr) - 1) {
      const need = 32 - Math.ceil(Math.log2(hostsNeeded + 1));
      d.push({
        code: 'SPEC_SUBNET_TOO_SMALL',
        subject: `subnet=${spec.subnet}`,
        message: `${spec.replicas + spec.clients} nodes need host addresses .${FIRST_HOST_OFFSET} to .${hostsNeeded - 1}`,
        hint: `use a /${need} or larger`,
      });
    }
    for (const other of facts.labsUp) {
      if (other.name === spec.name) continue;
      const oc = parseCidr(other.subnet);
      if (oc && cidrsOverlap(cidr, oc)) {
        d.push({ code: 'SPEC_SUBNET_OVERLAP', subject: `subnet=${spec.subnet}`, message: `overlaps lab '${other.name}' (${other.subnet})`, hint: 'pick another --subnet or take that lab down' });
      }
    }
    if (PROVIDER_TRAITS[provider].routedFromHost) {
      for (const s of facts.hostSubnets) {
        const hc = parseCidr(s);
        if (hc && hc.prefix > 0 && cidrsOverlap(cidr, hc)) {
          d.push({ code: 'SPEC_SUBNET_OVERLAP', subject: `subnet=${spec.subnet}`, message: `overlaps the host route ${s}`, hint: 'pick another --subnet' });
        }
      }
    }
  }
  const lastPort = lastNodePort(spec.basePort, spec.replicas, spec.clients);
  if (lastPort > 65535) {
    d.push({ code: 'SPEC_BAD_PORT', subject: `basePort=${spec.basePort}`, message: `ports up to ${lastPort} would be needed`, hint: 'use a base port below 65000' });
  }
  if (facts.labsUp.some((l) => l.name === spec.name)) {
    d.push({ code: 'LAB_ALREADY_UP', subject: `name=${spec.name}`, message: `lab '${spec.name}' is already up`, hint: `run \`electrode-lab down --name ${spec.name}\` first, or pick another --name` });
  }
  if (d.length || !cidr) return { diagnostics: d };

  const n = spec.replicas;
  const f = (n - 1) / 2;
  const nodes: PlanNode[] = [];
  const mk = (role: NodeRole, index: number, offset: number, port: number): PlanNode => {
    const name = `${role}${index}`;
    return {
      name,
      role,
      index,
      ip: formatIpv4((cidr.network + offset) >>> 0),
      mac: nodeMac(spec.name, role, index),
      port,
      ifname: 'eth0',
      netns: `${labNamespacePrefix(spec.name)}${name}`,
      switchIf: `p-${name}`,
      pinDir: `${BPFFS_ROOT}/${spec.name}/${name}`,
      hostname: `${spec.name}-${name}`,
    };
  };
  for (let i = 0; i < n; i++) nodes.push(mk('replica', i, FIRST_HOST_OFFSET + i, nodePort(spec.basePort, 'replica', i)));
  for (let j = 0; j < spec.clients; j++) nodes.push(mk('client', j, FIRST_HOST_OFFSET + n + j, nodePort(spec.basePort, 'client', j)));

  const driver = spec.vm.driver === 'auto' ? (facts.kvmUsable ? 'kvm' : 'qemu') : spec.vm.driver;
  const driverReason =
    spec.vm.driver !== 'auto' ? `vm.driver=${spec.vm.driver} from the spec` : facts.kvmUsable ? '/dev/kvm boots guests' : '/dev/kvm missing or unusable for stock kernels: software emulation (slow)';

  const plan: Plan = {
    schema: PLAN_SCHEMA,
    lab: spec.name,
    provider,
    providerReason,
    spec,
    cluster: { n, f, quorum: f + 1 },
    network: {
      cidr: formatCidr(cidr),
      netmask: formatIpv4(maskOf(cidr.prefix)),
      prefix: cidr.prefix,
      gateway: formatIpv4((cidr.network + 1) >>> 0),
      mtu: spec.mtu,
      basePort: spec.basePort,
      switchNs: `${labNamespacePrefix(spec.name)}sw`,
      bridge: 'br0',
    },
    nodes,
    vm: {
      driver,
      driverReason,
      cpus: spec.vm.cpus,
      memory: spec.vm.memory,
      box: spec.vm.box,
      kernel: spec.vm.kernel,
      queues: xdpQueues(spec.vm.cpus),
      libvirtNetwork: `el-${spec.name}`,
    },
    bpf: { pinRoot: `${BPFFS_ROOT}/${spec.name}` },
  };
  return { plan, diagnostics: [] };
}

/** Convenience for callers: inputs -> plan, or throw all diagnostics of spec and plan phases. */
export function planFromInputs(inputs: SpecInput[], facts: HostFacts = NO_FACTS): Plan {
  const { spec, diagnostics } = normalizeSpec(...inputs);
  if (!spec) throw new DiagnosticsError(diagnostics, 'spec');
  const r = planLab(spec, facts);
  if (!r.plan) throw new DiagnosticsError(r.diagnostics, 'plan');
  return r.plan;
}

export function replicas(plan: Plan): PlanNode[] {
  return plan.nodes.filter((n) => n.role === 'replica');
}

export function clients(plan: Plan): PlanNode[] {
  return plan.nodes.filter((n) => n.role === 'client');
}

export function findNode(plan: Plan, name: string): PlanNode | undefined {
  return plan.nodes.find((n) => n.name === name);
}

export type { Cidr };
