/**
 * The hosts provider's inventory: which existing machines make up the lab,
 * how to reach them over SSH and which NIC carries the lab traffic. Pure:
 * text in, inventory or diagnostics out.
 *
 * Unlike plan.ts (netns/vagrant), nothing here invents an address: a node's
 * lab IPv4 and MAC are facts of its machine. The inventory MAY state them;
 * `hostFactsToNodes` adopts what the machines report (read by the provider's
 * preflight, see facts.ts) and checks it against what the inventory stated.
 */
import { parse as parseYaml } from 'yaml';
import { Diagnostic, DiagnosticsError } from '../../diagnostics.js';
import { formatCidr, formatIpv4, maskOf, parseCidr } from '../../ipv4.js';
import { NodeRole } from '../../plan.js';
import { DEFAULT_SPEC, MAX_CLIENTS, MAX_REPLICAS, MAX_XDP_MTU, MIN_MTU, MIN_REPLICAS } from '../../spec.js';
import { HostNicFacts, isIfname, isUnicastMac, normalizeMac, parseHostCidr } from './facts.js';

// ---------------------------------------------------------------- input shapes

/** `[user@]host[:port]` (like `ssh -J`) or a mapping. */
export type JumpHostInput = string | { host?: string; port?: number; user?: string };

export interface SshInput {
  host?: string;
  port?: number;
  user?: string;
  /** Path of a private key file (as written; `~` is expanded by the provider). */
  key?: string;
  jumpHost?: JumpHostInput;
}

export interface NicInput {
  name?: string;
  mac?: string;
}

export interface InventoryNodeInput {
  name?: string;
  role?: NodeRole;
  ssh?: SshInput;
  /** The lab NIC, by interface name and/or MAC (at least one). */
  nic?: NicInput;
  /** The lab IPv4 with prefix, when known in advance (else read from the machine). */
  ip?: string;
  /** Shorthand for nic.mac. */
  mac?: string;
}

export type Toggle = 'off' | 'keep';
export type IrqAffinityMode = 'pin' | 'spread' | 'keep';

export interface TuningInput {
  mtu?: number;
  coalescing?: Toggle;
  queues?: number | 'keep';
  irqbalance?: Toggle;
  irqAffinity?: IrqAffinityMode;
  /** The CPU `pin` moves the NIC's IRQs to (Electrode: 0, the replica ran on CPU 1). */
  irqCpu?: number;
}

/** An inventory file as written (before defaults and checks); types are not trusted. */
export interface InventoryInput {
  lab?: string;
  /** Alias of lab. */
  name?: string;
  port?: number;
  /** Alias of port. */
  basePort?: number;
  mtu?: number;
  /** How many of the nodes without a `role` are replicas (in file order); see `assignRoles`. */
  replicas?: number;
  /** Defaults for every node's ssh (not host). */
  ssh?: Omit<SshInput, 'host'>;
  /** Default lab NIC name for every node (e.g. all xl170s use ens1f1np1). */
  nic?: { name?: string };
  nodes?: InventoryNodeInput[];
  tuning?: TuningInput;
}

// ---------------------------------------------------------------- normalized shapes

export interface SshHop {
  host: string;
  port: number;
  user?: string;
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  key?: string;
  jumpHost?: SshHop;
}

export interface InventoryNode {
  /** `replica<i>` / `client<j>` unless the inventory names it. */
  name: string;
  role: NodeRole;
  /** Replica index (the replica's `-i`, the eBPF peer-table key) or client index, in file order within the role. */
  index: number;
  /** Position in the file's `nodes` list, for diagnostics (`nodes[2]`). */
  entry: number;
  ssh: SshTarget;
  nic: { name?: string; mac?: string };
  /** Stated lab IPv4 `a.b.c.d/len`. */
  ip?: string;
}

/** What to change on each machine, and the Electrode defaults. */
export interface TuningSettings {
  coalescing: Toggle;
  queues: number | 'keep';
  irqbalance: Toggle;
  irqAffinity: IrqAffinityMode;
  irqCpu: number;
}

export const DEFAULT_TUNING: TuningSettings = { coalescing: 'off', queues: 1, irqbalance: 'off', irqAffinity: 'pin', irqCpu: 0 };
export const DEFAULT_SSH_USER = 'root';
export const DEFAULT_SSH_PORT = 22;
/** Same offsets as plan.ts: replica i = base + i, client j = base + 100 + j. */
export const CLIENT_PORT_OFFSET = 100;

export interface Inventory {
  lab: string;
  basePort: number;
  /** The lab MTU to set on every lab NIC; undefined = keep what the machines have (they must agree). */
  mtu?: number;
  /** Replicas in index order, then clients in index order. */
  nodes: InventoryNode[];
  tuning: TuningSettings;
  cluster: { n: number; f: number; quorum: number };
}

const TOP_KEYS = ['lab', 'name', 'port', 'basePort', 'mtu', 'replicas', 'ssh', 'nic', 'nodes', 'tuning'] as const;
const NODE_KEYS = ['name', 'role', 'ssh', 'nic', 'ip', 'mac'] as const;
const SSH_KEYS = ['host', 'port', 'user', 'key', 'jumpHost'] as const;
const DEFAULT_SSH_KEYS = ['port', 'user', 'key', 'jumpHost'] as const;
const NIC_KEYS = ['name', 'mac'] as const;
const DEFAULT_NIC_KEYS = ['name'] as const;
const JUMP_KEYS = ['host', 'port', 'user'] as const;
const TUNING_KEYS = ['mtu', 'coalescing', 'queues', 'irqbalance', 'irqAffinity', 'irqCpu'] as const;
const MAX_QUEUES = 256;

// ---------------------------------------------------------------- parse

/** Parses the text of an inventory file (YAML; JSON is YAML). Throws DiagnosticsError on syntax or shape. */
export function parseInventory(text: string, source: string): InventoryInput {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new DiagnosticsError([{ code: 'INV_SYNTAX', subject: source, message: (e as Error).message.split('\n')[0] ?? 'unparseable', hint: 'fix the YAML/JSON syntax' }], 'inventory');
  }
  if (raw === null || raw === undefined || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DiagnosticsError(
      [{ code: 'INV_NOT_MAPPING', subject: source, message: 'an inventory must be a mapping with a `nodes` list', hint: `fields are ${TOP_KEYS.join(', ')}` }],
      'inventory',
    );
  }
  return raw as InventoryInput;
}

// ---------------------------------------------------------------- validate

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const LAB_RE = /^[a-z][a-z0-9-]{0,15}$/;
const NODE_NAME_RE = /^[a-z][a-z0-9-]{0,30}$/;
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$|^\[?[0-9A-Fa-f:]+(?:%[A-Za-z0-9]+)?\]?$/;

class Collector {
  readonly d: Diagnostic[] = [];
  add(code: string, subject: string, message: string, hint?: string): void {
    this.d.push({ code, subject, message, ...(hint ? { hint } : {}) });
  }
  unknown(obj: Record<string, unknown>, known: readonly string[], at: string): void {
    for (const k of Object.keys(obj)) {
      if (!known.includes(k)) this.add('INV_UNKNOWN_FIELD', at ? `${at}.${k}` : k, 'unknown field', `${at || 'top-level'} fields are ${known.join(', ')}`);
    }
  }
}

function checkHost(c: Collector, host: unknown, at: string): string | undefined {
  if (typeof host !== 'string' || host.trim() === '') {
    c.add('INV_NO_SSH_HOST', at, 'every node needs the host name or address to SSH to', 'e.g. ssh: { host: pc417.utah.cloudlab.us }');
    return undefined;
  }
  const h = host.trim();
  if (h.includes('@')) {
    c.add('INV_SSH_HOST', `${at}=${h}`, 'the user goes in its own field', `write ssh: { host: ${h.split('@').pop()}, user: ${h.split('@')[0]} }`);
    return undefined;
  }
  const hp = /^([^:\s]+):(\d+)$/.exec(h);
  if (hp) {
    c.add('INV_SSH_HOST', `${at}=${h}`, 'the port goes in its own field', `write ssh: { host: ${hp[1]}, port: ${hp[2]} }`);
    return undefined;
  }
  if (!HOST_RE.test(h)) {
    c.add('INV_SSH_HOST', `${at}=${h}`, 'not a host name or IP address', 'e.g. pc417.utah.cloudlab.us or 192.168.1.20');
    return undefined;
  }
  return h;
}

function checkPort(c: Collector, v: unknown, at: string): number | undefined {
  if (v === undefined) return undefined;
  if (!isInt(v) || v < 1 || v > 65535) {
    c.add('INV_BAD_PORT', `${at}=${String(v)}`, 'must be a TCP port 1-65535', 'SSH listens on 22 unless the host says otherwise');
    return undefined;
  }
  return v;
}

function checkUser(c: Collector, v: unknown, at: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !USER_RE.test(v)) {
    c.add('INV_BAD_USER', `${at}=${String(v)}`, 'not a login name', 'on CloudLab, your portal user name');
    return undefined;
  }
  return v;
}

function checkKey(c: Collector, v: unknown, at: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.trim() === '') {
    c.add('INV_TYPE', `${at}=${String(v)}`, 'must be the path of a private key file', 'e.g. ~/.ssh/id_ed25519');
    return undefined;
  }
  return v;
}

/** `[user@]host[:port]` or { host, port?, user? } -> hop. */
function checkJump(c: Collector, v: unknown, at: string): SshHop | undefined | null {
  if (v === undefined) return undefined;
  let host: unknown;
  let port: unknown = DEFAULT_SSH_PORT;
  let user: unknown;
  if (typeof v === 'string') {
    const m = /^(?:([^@\s]+)@)?([^:@\s]+|\[[0-9A-Fa-f:]+\])(?::(\d+))?$/.exec(v.trim());
    if (!m) {
      c.add('INV_BAD_JUMP_HOST', `${at}=${v}`, 'must be [user@]host[:port]', 'e.g. alice@users.emulab.net:22');
      return null;
    }
    [, user, host] = m;
    if (m[3] !== undefined) port = Number(m[3]);
  } else if (isMapping(v)) {
    c.unknown(v, JUMP_KEYS, at);
    ({ host, user } = v);
    if (v.port !== undefined) port = v.port;
  } else {
    c.add('INV_BAD_JUMP_HOST', `${at}=${String(v)}`, 'must be [user@]host[:port] or a mapping', 'e.g. jumpHost: alice@users.emulab.net');
    return null;
  }
  const h = checkHost(c, host, `${at}.host`);
  const p = checkPort(c, port, `${at}.port`);
  const u = checkUser(c, user, `${at}.user`);
  if (!h || p === undefined || (user !== undefined && !u)) return null;
  return { host: h, port: p, ...(u ? { user: u } : {}) };
}

function checkMac(c: Collector, v: unknown, at: string): string | undefined {
  if (v === undefined) return undefined;
  const mac = typeof v === 'string' ? normalizeMac(v) : undefined;
  if (!mac) {
    c.add('INV_BAD_MAC', `${at}=${String(v)}`, 'not a MAC address', 'six hex bytes, e.g. ec:0d:9a:7e:24:31');
    return undefined;
  }
  if (!isUnicastMac(mac)) {
    c.add('INV_BAD_MAC', `${at}=${mac}`, 'a NIC has a unicast, non-zero MAC (the first byte is even)', 'copy it from `ip link show` on the machine');
    return undefined;
  }
  return mac;
}

/** The lab IPv4 must be a host address with a prefix of /8 to /30. */
function checkLabIp(c: Collector, code: string, v: unknown, at: string): string | undefined {
  if (v === undefined) return undefined;
  const p = typeof v === 'string' ? parseHostCidr(v) : undefined;
  if (!p) {
    c.add(code, `${at}=${String(v)}`, 'must be an IPv4 address with its prefix length', 'e.g. 10.10.1.1/24');
    return undefined;
  }
  if (p.prefix < 8 || p.prefix > 30) {
    c.add(code, `${at}=${v as string}`, 'the lab subnet must be a /8 to /30', 'CloudLab LANs are 10.10.1.0/24');
    return undefined;
  }
  const mask = maskOf(p.prefix);
  const host = (p.addr & ~mask) >>> 0;
  if (host === 0 || host === (~mask >>> 0)) {
    c.add(code, `${at}=${v as string}`, `${p.address} is the ${host === 0 ? 'network' : 'broadcast'} address of its /${p.prefix}`, 'use a host address');
    return undefined;
  }
  return `${p.address}/${p.prefix}`;
}

function checkMtu(c: Collector, v: unknown, at: string): number | undefined {
  if (v === undefined) return undefined;
  if (!isInt(v)) {
    c.add('INV_TYPE', `${at}=${String(v)}`, 'must be a whole number', 'e.g. 1500 or 3000');
    return undefined;
  }
  if (v < MIN_MTU || v > MAX_XDP_MTU) {
    c.add(
      v > MAX_XDP_MTU ? 'INV_MTU_TOO_LARGE_FOR_XDP' : 'INV_MTU_TOO_SMALL',
      `${at}=${v}`,
      v > MAX_XDP_MTU ? `native XDP needs the frame in one 4 KiB page with headroom (most drivers refuse above ${MAX_XDP_MTU})` : `below the IPv4 minimum of ${MIN_MTU}`,
      v > MAX_XDP_MTU ? `use at most ${MAX_XDP_MTU}; Electrode's testbed used 3000` : 'use 1500',
    );
    return undefined;
  }
  return v;
}

function oneOf<T extends string>(c: Collector, v: unknown, allowed: readonly T[], at: string): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    c.add('INV_TUNING_VALUE', `${at}=${String(v)}`, `must be ${allowed.join(' or ')}`, `Electrode's setting is ${String(DEFAULT_TUNING[at.split('.').pop() as keyof TuningSettings])}`);
    return undefined;
  }
  return v as T;
}

function checkTuning(c: Collector, v: unknown): { tuning: TuningSettings; mtu?: number } {
  const tuning = { ...DEFAULT_TUNING };
  if (v === undefined) return { tuning };
  if (!isMapping(v)) {
    c.add('INV_TYPE', 'tuning', 'must be a mapping', `fields are ${TUNING_KEYS.join(', ')}`);
    return { tuning };
  }
  c.unknown(v, TUNING_KEYS, 'tuning');
  const mtu = checkMtu(c, v.mtu, 'tuning.mtu');
  tuning.coalescing = oneOf(c, v.coalescing, ['off', 'keep'] as const, 'tuning.coalescing') ?? tuning.coalescing;
  tuning.irqbalance = oneOf(c, v.irqbalance, ['off', 'keep'] as const, 'tuning.irqbalance') ?? tuning.irqbalance;
  tuning.irqAffinity = oneOf(c, v.irqAffinity, ['pin', 'spread', 'keep'] as const, 'tuning.irqAffinity') ?? tuning.irqAffinity;
  if (v.queues !== undefined) {
    if (v.queues === 'keep' || (isInt(v.queues) && v.queues >= 1 && v.queues <= MAX_QUEUES)) tuning.queues = v.queues;
    else c.add('INV_TUNING_VALUE', `tuning.queues=${String(v.queues)}`, `must be 1-${MAX_QUEUES} or keep`, "Electrode's setting is 1 (ethtool -L <if> combined 1)");
  }
  if (v.irqCpu !== undefined) {
    if (isInt(v.irqCpu) && v.irqCpu >= 0 && v.irqCpu < 4096) tuning.irqCpu = v.irqCpu;
    else c.add('INV_TUNING_VALUE', `tuning.irqCpu=${String(v.irqCpu)}`, 'must be a CPU number', "Electrode's setting is 0 (the replica runs on CPU 1)");
  }
  return { tuning, ...(mtu !== undefined ? { mtu } : {}) };
}

/** Two spellings of one field (lab/name, port/basePort): either, not both different. */
function alias(c: Collector, obj: Record<string, unknown>, a: string, b: string): unknown {
  if (obj[a] !== undefined && obj[b] !== undefined && obj[a] !== obj[b]) {
    c.add('INV_CONFLICT', `${a}=${String(obj[a])} ${b}=${String(obj[b])}`, `${b} is another name for ${a}`, `give only ${a}`);
  }
  return obj[a] ?? obj[b];
}

interface NodeDraft {
  entry: number;
  at: string;
  name?: string;
  role?: NodeRole;
  ssh?: SshTarget;
  nic: { name?: string; mac?: string };
  ip?: string;
}

/**
 * Roles: a node's own `role` wins. The others, in file order: with a
 * top-level `replicas: N`, replicas until N replicas exist, then clients;
 * without it, replicas, except the last node of the file, which is the client
 * when no node says `role: client`.
 */
function assignRoles(c: Collector, drafts: NodeDraft[], replicasWanted: number | undefined): void {
  const explicitReplicas = drafts.filter((d) => d.role === 'replica').length;
  const explicitClients = drafts.filter((d) => d.role === 'client').length;
  if (replicasWanted !== undefined) {
    if (explicitReplicas > replicasWanted) {
      c.add('INV_ROLE_COUNT', `replicas=${replicasWanted}`, `${explicitReplicas} nodes say role: replica`, 'raise `replicas` or change the roles');
    }
    if (replicasWanted > drafts.length - explicitClients) {
      c.add('INV_ROLE_COUNT', `replicas=${replicasWanted}`, `only ${drafts.length - explicitClients} nodes can be replicas`, 'add nodes or lower `replicas`');
    }
    let have = explicitReplicas;
    for (const d of drafts) {
      if (d.role) continue;
      d.role = have < replicasWanted ? 'replica' : 'client';
      if (d.role === 'replica') have++;
    }
    return;
  }
  const last = drafts[drafts.length - 1];
  for (const d of drafts) {
    if (d.role) continue;
    d.role = d === last && explicitClients === 0 ? 'client' : 'replica';
  }
}

/** Checks every field and rule, collecting all problems. `source` prefixes nothing; subjects are field paths. */
export function validateInventory(inv: InventoryInput): { inventory?: Inventory; diagnostics: Diagnostic[] } {
  const c = new Collector();
  const raw = inv as unknown as Record<string, unknown>;
  if (!isMapping(raw)) {
    return { diagnostics: [{ code: 'INV_NOT_MAPPING', subject: 'inventory', message: 'an inventory must be a mapping with a `nodes` list', hint: `fields are ${TOP_KEYS.join(', ')}` }] };
  }
  c.unknown(raw, TOP_KEYS, '');

  const labV = alias(c, raw, 'lab', 'name') ?? DEFAULT_SPEC.name;
  const lab = typeof labV === 'string' && LAB_RE.test(labV) && !labV.endsWith('-') ? labV : undefined;
  if (!lab) c.add('INV_BAD_NAME', `lab=${String(labV)}`, 'lab names are 1-16 characters of a-z, 0-9 and -, starting with a letter', 'e.g. lab: cl3');

  const portV = alias(c, raw, 'port', 'basePort') ?? DEFAULT_SPEC.basePort;
  let basePort: number | undefined;
  if (!isInt(portV) || portV < 1024 || portV > 65535) c.add('INV_BAD_PORT', `port=${String(portV)}`, 'the base UDP port must be 1024-65535', `the default is ${DEFAULT_SPEC.basePort}`);
  else basePort = portV;

  const topMtu = checkMtu(c, raw.mtu, 'mtu');
  const { tuning, mtu: tuningMtu } = checkTuning(c, raw.tuning);
  if (topMtu !== undefined && tuningMtu !== undefined && topMtu !== tuningMtu) {
    c.add('INV_CONFLICT', `mtu=${topMtu} tuning.mtu=${tuningMtu}`, 'the lab has one MTU', 'give only `mtu`');
  }
  const mtu = topMtu ?? tuningMtu;

  let replicasWanted: number | undefined;
  if (raw.replicas !== undefined) {
    if (isInt(raw.replicas)) replicasWanted = raw.replicas;
    else c.add('INV_TYPE', `replicas=${String(raw.replicas)}`, 'must be a whole number', 'use 3, 5 or 7');
  }

  // defaults for every node
  let defSsh: Record<string, unknown> = {};
  if (raw.ssh !== undefined) {
    if (isMapping(raw.ssh)) {
      c.unknown(raw.ssh, DEFAULT_SSH_KEYS, 'ssh');
      if (raw.ssh.host !== undefined) c.add('INV_UNKNOWN_FIELD', 'ssh.host', 'the top-level ssh holds defaults; each node has its own host', `write the host under nodes[i].ssh`);
      defSsh = raw.ssh;
    } else c.add('INV_TYPE', 'ssh', 'must be a mapping', `fields are ${DEFAULT_SSH_KEYS.join(', ')}`);
  }
  let defNicName: unknown;
  if (raw.nic !== undefined) {
    if (isMapping(raw.nic)) {
      c.unknown(raw.nic, DEFAULT_NIC_KEYS, 'nic');
      defNicName = raw.nic.name;
    } else c.add('INV_TYPE', 'nic', 'must be a mapping', 'e.g. nic: { name: ens1f1np1 }');
  }

  const drafts: NodeDraft[] = [];
  if (!Array.isArray(raw.nodes) || raw.nodes.length === 0) {
    c.add('INV_NO_NODES', 'nodes', 'the inventory lists no machines', 'add one entry per machine under `nodes:` (replicas first, the client last)');
  } else {
    raw.nodes.forEach((n: unknown, i: number) => {
      const at = `nodes[${i}]`;
      if (!isMapping(n)) {
        c.add('INV_TYPE', at, 'must be a mapping', `node fields are ${NODE_KEYS.join(', ')}`);
        return;
      }
      c.unknown(n, NODE_KEYS, at);
      const d: NodeDraft = { entry: i, at, nic: {} };
      if (n.name !== undefined) {
        if (typeof n.name === 'string' && NODE_NAME_RE.test(n.name)) d.name = n.name;
        else c.add('INV_BAD_NODE_NAME', `${at}.name=${String(n.name)}`, 'node names are 1-31 characters of a-z, 0-9 and -, starting with a letter', 'or leave it out: replica<i> / client<j>');
      }
      if (n.role !== undefined) {
        if (n.role === 'replica' || n.role === 'client') d.role = n.role;
        else c.add('INV_BAD_ROLE', `${at}.role=${String(n.role)}`, 'must be replica or client', 'or leave it out to go by order');
      }
      // ssh: node fields over the top-level defaults
      const ssh = n.ssh === undefined ? {} : n.ssh;
      if (!isMapping(ssh)) {
        c.add('INV_TYPE', `${at}.ssh`, 'must be a mapping', `ssh fields are ${SSH_KEYS.join(', ')}`);
      } else {
        c.unknown(ssh, SSH_KEYS, `${at}.ssh`);
        const pick = (k: string) => (ssh[k] !== undefined ? [ssh[k], `${at}.ssh.${k}`] : [defSsh[k], `ssh.${k}`]) as [unknown, string];
        const host = checkHost(c, ssh.host, `${at}.ssh.host`);
        const port = checkPort(c, pick('port')[0] ?? DEFAULT_SSH_PORT, pick('port')[1]);
        const user = checkUser(c, pick('user')[0] ?? DEFAULT_SSH_USER, pick('user')[1]);
        const key = checkKey(c, ...pick('key'));
        const jump = checkJump(c, ...pick('jumpHost'));
        if (host && port !== undefined && user && jump !== null && (pick('key')[0] === undefined || key)) {
          d.ssh = { host, port, user, ...(key ? { key } : {}), ...(jump ? { jumpHost: jump } : {}) };
        }
      }
      // lab NIC
      const nic = n.nic === undefined ? {} : n.nic;
      if (!isMapping(nic)) {
        c.add('INV_TYPE', `${at}.nic`, 'must be a mapping', 'e.g. nic: { name: ens1f1np1 } or nic: { mac: ec:0d:9a:7e:24:31 }');
      } else {
        c.unknown(nic, NIC_KEYS, `${at}.nic`);
        const nameV = nic.name ?? defNicName;
        if (nameV !== undefined) {
          if (typeof nameV === 'string' && isIfname(nameV)) d.nic.name = nameV;
          else c.add('INV_BAD_IFNAME', `${nic.name !== undefined ? `${at}.nic.name` : 'nic.name'}=${String(nameV)}`, 'not an interface name (1-15 characters, no / : or spaces)', 'see `ip -br link` on the machine');
        }
        const m1 = checkMac(c, nic.mac, `${at}.nic.mac`);
        const m2 = checkMac(c, n.mac, `${at}.mac`);
        if (m1 && m2 && m1 !== m2) c.add('INV_CONFLICT', `${at}.mac=${m2} ${at}.nic.mac=${m1}`, 'mac is shorthand for nic.mac', 'give one of them');
        const mac = m1 ?? m2;
        if (mac) d.nic.mac = mac;
        if (nameV === undefined && nic.mac === undefined && n.mac === undefined) {
          c.add('INV_NO_NIC', at, 'give nic.name or nic.mac', 'the NIC on the lab network, e.g. nic: { name: ens1f1np1 } (a top-level nic.name applies to all nodes)');
        }
      }
      const ip = checkLabIp(c, 'INV_BAD_IP', n.ip, `${at}.ip`);
      if (ip) d.ip = ip;
      drafts.push(d);
    });
  }

  // across nodes
  const dup = (code: string, what: string, key: (d: NodeDraft) => string | undefined, hint: string) => {
    const seen = new Map<string, string>();
    for (const d of drafts) {
      const k = key(d);
      if (k === undefined) continue;
      const first = seen.get(k);
      if (first) c.add(code, `${d.at}`, `same ${what} as ${first} (${k})`, hint);
      else seen.set(k, d.at);
    }
  };
  dup('INV_DUP_NAME', 'name', (d) => d.name, 'node names must be unique');
  dup('INV_DUP_SSH_HOST', 'SSH host', (d) => d.ssh && `${d.ssh.jumpHost ? `${d.ssh.jumpHost.host}:${d.ssh.jumpHost.port}->` : ''}${d.ssh.host.toLowerCase()}:${d.ssh.port}`, 'each node is its own machine');
  dup('INV_DUP_IP', 'lab IP', (d) => d.ip?.split('/')[0], 'each node has its own lab address');
  dup('INV_DUP_MAC', 'MAC', (d) => d.nic.mac, 'each node has its own lab NIC');
  const subnets = new Map<string, string[]>();
  for (const d of drafts) {
    if (!d.ip) continue;
    const s = formatCidr(parseCidr(d.ip)!);
    subnets.set(s, [...(subnets.get(s) ?? []), d.at]);
  }
  if (subnets.size > 1) {
    c.add('INV_MIXED_SUBNETS', 'nodes[].ip', `the lab addresses are in ${subnets.size} subnets: ${[...subnets].map(([s, at]) => `${s} (${at.join(', ')})`).join('; ')}`, 'all nodes must share one subnet (one LAN), e.g. 10.10.1.0/24');
  }

  if (drafts.length) assignRoles(c, drafts, replicasWanted);
  const n = drafts.filter((d) => d.role === 'replica').length;
  const clientCount = drafts.filter((d) => d.role === 'client').length;
  if (drafts.length) {
    if (n < MIN_REPLICAS || n > MAX_REPLICAS) {
      c.add('INV_REPLICAS_RANGE', `replicas=${n}`, `electrode-lab runs ${MIN_REPLICAS} to ${MAX_REPLICAS} replicas`, n < MIN_REPLICAS ? 'add machines: 3 replicas and 1 client is the smallest lab' : 'use 3, 5 or 7');
    } else if (n % 2 === 0) {
      c.add('INV_EVEN_REPLICAS', `replicas=${n}`, 'Paxos needs 2f+1 replicas', `use ${n - 1} or ${n + 1} (set \`replicas:\` or a node's \`role:\`)`);
    }
    if (clientCount < 1) c.add('INV_NO_CLIENT', 'nodes', 'no node is a client', 'add a machine for the client, or mark one `role: client`');
    else if (clientCount > MAX_CLIENTS) c.add('INV_CLIENTS_RANGE', `clients=${clientCount}`, `must be 1 to ${MAX_CLIENTS}`, 'one client node with many threads is usually enough (--threads)');
  }
  if (basePort !== undefined && drafts.length) {
    const last = basePort + Math.max(n, CLIENT_PORT_OFFSET + clientCount);
    if (last > 65535) c.add('INV_BAD_PORT', `port=${basePort}`, `ports up to ${last} would be needed`, 'use a base port below 65000');
  }

  // names: defaults from role and index; a given name may not take a default one of another node
  const index = new Map<NodeDraft, number>();
  let ri = 0;
  let ci = 0;
  for (const d of drafts) index.set(d, d.role === 'replica' ? ri++ : ci++);
  const finalName = (d: NodeDraft) => d.name ?? `${d.role}${index.get(d)}`;
  const byName = new Map<string, NodeDraft>();
  for (const d of drafts) {
    const nm = finalName(d);
    const other = byName.get(nm);
    if (other && !(other.name && d.name)) c.add('INV_DUP_NAME', d.at, `its name ${nm} is also ${other.at}'s`, 'rename one (default names are replica<i> and client<j>)');
    byName.set(nm, d);
  }

  if (c.d.length || !lab || basePort === undefined) return { diagnostics: c.d };
  const nodes: InventoryNode[] = [...drafts]
    .sort((a, b) => (a.role === b.role ? index.get(a)! - index.get(b)! : a.role === 'replica' ? -1 : 1))
    .map((d) => ({ name: finalName(d), role: d.role!, index: index.get(d)!, entry: d.entry, ssh: d.ssh!, nic: d.nic, ...(d.ip ? { ip: d.ip } : {}) }));
  const f = (n - 1) / 2;
  return {
    inventory: { lab, basePort, ...(mtu !== undefined ? { mtu } : {}), nodes, tuning, cluster: { n, f, quorum: f + 1 } },
    diagnostics: [],
  };
}

/** parseInventory + validateInventory; throws DiagnosticsError with all problems. */
export function inventoryFromText(text: string, source: string): Inventory {
  const { inventory, diagnostics } = validateInventory(parseInventory(text, source));
  if (!inventory) throw new DiagnosticsError(diagnostics.map((d) => ({ ...d, subject: `${source}: ${d.subject}` })), 'inventory');
  return inventory;
}

// ---------------------------------------------------------------- adopt machine facts

export interface HostNode {
  name: string;
  role: NodeRole;
  index: number;
  /** Lab IPv4 address (no prefix; the prefix is network.prefix). */
  ip: string;
  mac: string;
  /** The lab NIC's name on its machine. */
  ifname: string;
  /** UDP port of the node's process: replica i = base + i, client j = base + 100 + j. */
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
      port: inventory.basePort + (node.role === 'replica' ? node.index : CLIENT_PORT_OFFSET + node.index),
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
