/**
 * The lab spec: what the user asks for. It comes from flags, from a YAML/JSON
 * file (`--lab FILE`), or both (flags win). This module is pure: text in,
 * spec or diagnostics out.
 */
import { parse as parseYaml } from 'yaml';
import { Diagnostic, DiagnosticsError } from './diagnostics.js';

import { PROVIDER_NAMES, ProviderName } from '../providers/names.js';

export { PROVIDER_NAMES };
export type { ProviderName };

export type VmDriver = 'auto' | 'kvm' | 'qemu';

export interface VmSpec {
  cpus: number;
  /** MiB */
  memory: number;
  /** Base box name, e.g. `electrode-lab/debian12` or `electrode-lab/ubuntu2004-k58`. */
  box: string;
  /** Pinned guest kernel release (`uname -r`), or `box` to keep the box's own. */
  kernel: string;
  driver: VmDriver;
  /** How the electrode-lab binaries get into the VMs: built in each guest (default) or copied from the host (same-distro guests). Unset = $ELECTRODE_LAB_VM_BUILD, else guest. */
  build?: 'guest' | 'host';
}

/** The hosts provider: which machines (an inventory, or a CloudLab manifest and the login to use). */
export interface HostsSpec {
  /** Inventory file (YAML or JSON): src/providers/hosts/inventory.ts. */
  inventory?: string;
  /** A CloudLab experiment's manifest (RSpec XML), instead of an inventory. */
  cloudlabManifest?: string;
  /** With a manifest: your CloudLab user, and the private key for it. */
  user?: string;
  key?: string;
}

export interface LabSpec {
  name: string;
  replicas: number;
  clients: number;
  /** undefined = choose automatically (vagrant when installed, else netns). */
  provider?: ProviderName;
  subnet: string;
  basePort: number;
  mtu: number;
  /** Client table size of every replica (which client a full table forgets decides which retry is refused): one value for the cluster, in the replica config. */
  maxClients: number;
  vm: VmSpec;
  hosts?: HostsSpec;
}

export const DEFAULT_KERNEL = '5.8.0-050800-generic';
export const MIN_REPLICAS = 3;
export const MAX_REPLICAS = 15;
export const MAX_CLIENTS = 8;
/** veth and virtio-net both refuse native XDP above about this MTU on 4 KiB pages (REFERENCE.md 2). */
export const MAX_XDP_MTU = 3500;
export const MIN_MTU = 576;
/** native/src/store.h EL_CTABLE_DEFAULT_MAX and the bounds of native/src/config.c. */
export const DEFAULT_CLIENT_TABLE = 16384;
export const MIN_CLIENT_TABLE = 16;
export const MAX_CLIENT_TABLE = 1 << 24;

export const DEFAULT_SPEC: LabSpec = {
  name: 'lab',
  replicas: 3,
  clients: 1,
  provider: undefined,
  subnet: '10.77.0.0/24',
  basePort: 51000,
  mtu: 1500,
  maxClients: DEFAULT_CLIENT_TABLE,
  vm: { cpus: 2, memory: 1024, box: 'electrode-lab/ubuntu2004-k58', kernel: DEFAULT_KERNEL, driver: 'auto' },
};

const TOP_KEYS = ['name', 'replicas', 'clients', 'provider', 'subnet', 'basePort', 'mtu', 'maxClients', 'vm', 'hosts'] as const;
const HOSTS_KEYS = ['inventory', 'cloudlabManifest', 'user', 'key'] as const;
const VM_KEYS = ['cpus', 'memory', 'box', 'kernel', 'driver', 'build'] as const;

/** A partial spec as given by a file or by flags, before defaults. */
export type SpecInput = Partial<Omit<LabSpec, 'vm' | 'hosts'>> & { vm?: Partial<VmSpec>; hosts?: Partial<HostsSpec> };

/** Parses the text of a lab file (YAML is a superset of JSON). Throws DiagnosticsError. */
export function parseSpecText(text: string, source: string): SpecInput {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new DiagnosticsError([
      { code: 'SPEC_SYNTAX', subject: source, message: (e as Error).message.split('\n')[0] ?? 'unparseable', hint: 'fix the YAML/JSON syntax' },
    ]);
  }
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DiagnosticsError([{ code: 'SPEC_NOT_MAPPING', subject: source, message: 'a lab file must be a mapping of fields', hint: `fields are ${TOP_KEYS.join(', ')}` }]);
  }
  const diags: Diagnostic[] = [];
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!(TOP_KEYS as readonly string[]).includes(k)) {
      diags.push({ code: 'SPEC_UNKNOWN_FIELD', subject: `${source}: ${k}`, message: 'unknown field', hint: `fields are ${TOP_KEYS.join(', ')}` });
    }
  }
  if (obj.vm !== undefined) {
    if (typeof obj.vm !== 'object' || obj.vm === null || Array.isArray(obj.vm)) {
      diags.push({ code: 'SPEC_TYPE', subject: `${source}: vm`, message: 'must be a mapping', hint: `fields are ${VM_KEYS.join(', ')}` });
    } else {
      for (const k of Object.keys(obj.vm)) {
        if (!(VM_KEYS as readonly string[]).includes(k)) {
          diags.push({ code: 'SPEC_UNKNOWN_FIELD', subject: `${source}: vm.${k}`, message: 'unknown field', hint: `vm fields are ${VM_KEYS.join(', ')}` });
        }
      }
    }
  }
  if (diags.length) throw new DiagnosticsError(diags);
  return obj as SpecInput;
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/**
 * Merges inputs (later ones win, e.g. [file, flags]) over the defaults and
 * checks each field's type and range. Cross-field and host checks live in plan.ts.
 */
export function normalizeSpec(...inputs: SpecInput[]): { spec?: LabSpec; diagnostics: Diagnostic[] } {
  const merged: Record<string, unknown> = { ...DEFAULT_SPEC };
  const vm: Record<string, unknown> = { ...DEFAULT_SPEC.vm };
  const hosts: Record<string, unknown> = {};
  for (const input of inputs) {
    for (const [k, v] of Object.entries(input)) {
      if (v === undefined) continue;
      if (k === 'vm' && typeof v === 'object' && v !== null) {
        for (const [vk, vv] of Object.entries(v)) if (vv !== undefined) vm[vk] = vv;
      } else if (k === 'hosts' && typeof v === 'object' && v !== null) {
        for (const [hk, hv] of Object.entries(v)) if (hv !== undefined) hosts[hk] = hv;
      } else {
        merged[k] = v;
      }
    }
  }
  // a box you choose brings its own kernel unless you also pin one; the default
  // box (ubuntu2004-k58) gets the pinned mainline 5.8 installed
  const kernelGiven = inputs.some((i) => i.vm?.kernel !== undefined);
  if (!kernelGiven && vm.box !== DEFAULT_SPEC.vm.box) vm.kernel = 'box';
  const d: Diagnostic[] = [];
  const { name, replicas, clients, provider, subnet, basePort, mtu, maxClients } = merged;

  if (typeof name !== 'string' || !/^[a-z][a-z0-9-]{0,15}$/.test(name) || name.endsWith('-')) {
    d.push({ code: 'SPEC_BAD_NAME', subject: `name=${String(name)}`, message: 'lab names are 1-16 characters of a-z, 0-9 and -, starting with a letter', hint: 'e.g. --name demo' });
  }
  if (!isInt(replicas)) {
    d.push({ code: 'SPEC_TYPE', subject: `replicas=${String(replicas)}`, message: 'must be a whole number', hint: 'use 3, 5 or 7' });
  } else if (replicas < MIN_REPLICAS || replicas > MAX_REPLICAS) {
    d.push({ code: 'SPEC_REPLICAS_RANGE', subject: `replicas=${replicas}`, message: `electrode-lab runs ${MIN_REPLICAS} to ${MAX_REPLICAS} replicas`, hint: 'use 3, 5 or 7' });
  } else if (replicas % 2 === 0) {
    d.push({ code: 'SPEC_EVEN_REPLICAS', subject: `replicas=${replicas}`, message: 'Paxos needs 2f+1 replicas', hint: `use ${replicas - 1} or ${replicas + 1}` });
  }
  if (!isInt(clients) || clients < 1 || clients > MAX_CLIENTS) {
    d.push({ code: 'SPEC_CLIENTS_RANGE', subject: `clients=${String(clients)}`, message: `must be 1 to ${MAX_CLIENTS}`, hint: 'one client node with many threads is usually enough (--threads)' });
  }
  if (provider !== undefined && !(PROVIDER_NAMES as readonly unknown[]).includes(provider)) {
    d.push({ code: 'SPEC_UNKNOWN_PROVIDER', subject: `provider=${String(provider)}`, message: 'no such provider', hint: `registered providers: ${PROVIDER_NAMES.join(', ')}` });
  }
  if (typeof subnet !== 'string') {
    d.push({ code: 'SPEC_TYPE', subject: `subnet=${String(subnet)}`, message: 'must be an IPv4 CIDR string', hint: "e.g. '10.77.0.0/24'" });
  }
  if (!isInt(basePort) || basePort < 1024 || basePort > 65535) {
    d.push({ code: 'SPEC_BAD_PORT', subject: `basePort=${String(basePort)}`, message: 'must be 1024-65535', hint: 'the default is 51000' });
  }
  if (!isInt(mtu)) {
    d.push({ code: 'SPEC_TYPE', subject: `mtu=${String(mtu)}`, message: 'must be a whole number', hint: 'e.g. 1500 or 3000' });
  } else if (mtu < MIN_MTU || mtu > MAX_XDP_MTU) {
    d.push({
      code: mtu > MAX_XDP_MTU ? 'SPEC_MTU_TOO_LARGE_FOR_XDP' : 'SPEC_MTU_TOO_SMALL',
      subject: `mtu=${mtu}`,
      message: mtu > MAX_XDP_MTU ? `native XDP needs the frame in one 4 KiB page with headroom (veth and virtio-net refuse above ${MAX_XDP_MTU})` : `below the IPv4 minimum of ${MIN_MTU}`,
      hint: mtu > MAX_XDP_MTU ? `use at most ${MAX_XDP_MTU}; Electrode's testbed used 3000` : 'use 1500',
    });
  }
  if (!isInt(maxClients) || maxClients < MIN_CLIENT_TABLE || maxClients > MAX_CLIENT_TABLE) {
    d.push({ code: 'SPEC_MAX_CLIENTS', subject: `maxClients=${String(maxClients)}`, message: `the replicas' client table holds ${MIN_CLIENT_TABLE} to ${MAX_CLIENT_TABLE} clients`, hint: `the default is ${DEFAULT_CLIENT_TABLE}; past it the least recently heard client is forgotten` });
  }
  if (!isInt(vm.cpus) || (vm.cpus as number) < 1 || (vm.cpus as number) > 64) {
    d.push({ code: 'SPEC_VM_CPUS', subject: `vm.cpus=${String(vm.cpus)}`, message: 'must be 1-64', hint: 'Electrode pins one replica to one core; 2 is a good default' });
  }
  if (!isInt(vm.memory) || (vm.memory as number) < 256) {
    d.push({ code: 'SPEC_VM_MEMORY', subject: `vm.memory=${String(vm.memory)}`, message: 'must be at least 256 (MiB)', hint: 'use 1024' });
  }
  if (typeof vm.box !== 'string' || vm.box.length === 0) {
    d.push({ code: 'SPEC_TYPE', subject: `vm.box=${String(vm.box)}`, message: 'must be a box name', hint: 'see `electrode-lab box list`' });
  }
  if (typeof vm.kernel !== 'string' || !/^(box|[0-9][0-9A-Za-z.+_-]*)$/.test(vm.kernel)) {
    d.push({ code: 'SPEC_BAD_KERNEL', subject: `vm.kernel=${String(vm.kernel)}`, message: "must be a kernel release like 5.8.0-050800-generic, or 'box'", hint: `the Electrode default is ${DEFAULT_KERNEL}` });
  }
  if (!['auto', 'kvm', 'qemu'].includes(vm.driver as string)) {
    d.push({ code: 'SPEC_VM_DRIVER', subject: `vm.driver=${String(vm.driver)}`, message: 'must be auto, kvm or qemu', hint: 'auto picks kvm when /dev/kvm boots guests, else qemu (software emulation)' });
  }
  if (vm.build !== undefined && vm.build !== 'guest' && vm.build !== 'host') {
    d.push({ code: 'SPEC_VM_BUILD', subject: `vm.build=${String(vm.build)}`, message: 'must be guest or host', hint: 'guest builds native/ and bpf/ in each VM; host copies the host-built binaries (same-distro guests such as debian12; run `npm run build` first)' });
  }
  for (const k of Object.keys(hosts)) {
    if (!(HOSTS_KEYS as readonly string[]).includes(k)) d.push({ code: 'SPEC_UNKNOWN_FIELD', subject: `hosts.${k}`, message: 'unknown field', hint: `hosts fields are ${HOSTS_KEYS.join(', ')}` });
    else if (typeof hosts[k] !== 'string' || !(hosts[k] as string).length) d.push({ code: 'SPEC_TYPE', subject: `hosts.${k}=${String(hosts[k])}`, message: 'must be a path or name', hint: 'e.g. --inventory hosts.yaml' });
  }
  const hasHosts = hosts.inventory !== undefined || hosts.cloudlabManifest !== undefined;
  if (provider === 'hosts' && !hasHosts) {
    d.push({ code: 'SPEC_HOSTS_NO_INVENTORY', subject: 'provider=hosts', message: 'the hosts provider drives machines that exist: it needs their inventory', hint: 'give --inventory hosts.yaml (README: "Machines that already exist"), or --cloudlab-manifest manifest.xml --ssh-user <you> --ssh-key <key>' });
  }
  if (hosts.inventory !== undefined && hosts.cloudlabManifest !== undefined) {
    d.push({ code: 'SPEC_HOSTS_BOTH', subject: 'hosts', message: 'an inventory and a CloudLab manifest were both given', hint: 'give one of them' });
  }
  if (hasHosts && provider !== undefined && provider !== 'hosts') {
    d.push({ code: 'SPEC_HOSTS_PROVIDER', subject: `provider=${String(provider)}`, message: 'an inventory or manifest is for the hosts provider', hint: 'add --provider hosts, or drop --inventory/--cloudlab-manifest' });
  }
  if (d.length) return { diagnostics: d };
  return {
    spec: { ...(merged as unknown as LabSpec), ...(hasHosts ? { provider: 'hosts' as const } : {}), vm: vm as unknown as VmSpec, ...(Object.keys(hosts).length ? { hosts: hosts as HostsSpec } : {}) },
    diagnostics: [],
  };
}
