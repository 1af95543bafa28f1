/**
 * The inventory's field checks: one function per kind of field (host, port,
 * user, key, jump host, MAC, lab address, MTU, tuning), each adding a
 * diagnostic with a stable code, the field's path and a hint to a Collector
 * and returning the value only when it is good. Pure.
 */
import { Diagnostic } from '../../core/diagnostics.js';
import { maskOf } from '../../core/ipv4.js';
import { MAX_XDP_MTU, MIN_MTU } from '../../core/spec.js';
import { isUnicastMac, normalizeMac, parseHostCidr } from './facts.js';
import { DEFAULT_SSH_PORT, DEFAULT_TUNING, SshHop, TuningSettings } from './inventoryShape.js';

export const TOP_KEYS = ['lab', 'name', 'port', 'basePort', 'mtu', 'replicas', 'ssh', 'nic', 'nodes', 'tuning'] as const;
export const NODE_KEYS = ['name', 'role', 'ssh', 'nic', 'ip', 'mac'] as const;
export const SSH_KEYS = ['host', 'port', 'user', 'key', 'jumpHost'] as const;
export const DEFAULT_SSH_KEYS = ['port', 'user', 'key', 'jumpHost'] as const;
export const NIC_KEYS = ['name', 'mac'] as const;
export const DEFAULT_NIC_KEYS = ['name'] as const;
export const JUMP_KEYS = ['host', 'port', 'user'] as const;
export const TUNING_KEYS = ['mtu', 'coalescing', 'queues', 'irqbalance', 'irqAffinity', 'irqCpu'] as const;
export const MAX_QUEUES = 256;

export const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
export const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
export const LAB_RE = /^[a-z][a-z0-9-]{0,15}$/;
export const NODE_NAME_RE = /^[a-z][a-z0-9-]{0,30}$/;
export const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
export const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$|^\[?[0-9A-Fa-f:]+(?:%[A-Za-z0-9]+)?\]?$/;

export class Collector {
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

export function checkHost(c: Collector, host: unknown, at: string): string | undefined {
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

export function checkPort(c: Collector, v: unknown, at: string): number | undefined {
  if (v === undefined) return undefined;
  if (!isInt(v) || v < 1 || v > 65535) {
    c.add('INV_BAD_PORT', `${at}=${String(v)}`, 'must be a TCP port 1-65535', 'SSH listens on 22 unless the host says otherwise');
    return undefined;
  }
  return v;
}

export function checkUser(c: Collector, v: unknown, at: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !USER_RE.test(v)) {
    c.add('INV_BAD_USER', `${at}=${String(v)}`, 'not a login name', 'on CloudLab, your portal user name');
    return undefined;
  }
  return v;
}

export function checkKey(c: Collector, v: unknown, at: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.trim() === '') {
    c.add('INV_TYPE', `${at}=${String(v)}`, 'must be the path of a private key file', 'e.g. ~/.ssh/id_ed25519');
    return undefined;
  }
  return v;
}

/** `[user@]host[:port]` or { host, port?, user? } -> hop. */
export function checkJump(c: Collector, v: unknown, at: string): SshHop | undefined | null {
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

export function checkMac(c: Collector, v: unknown, at: string): string | undefined {
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
export function checkLabIp(c: Collector, code: string, v: unknown, at: string): string | undefined {
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

export function checkMtu(c: Collector, v: unknown, at: string): number | undefined {
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

export function oneOf<T extends string>(c: Collector, v: unknown, allowed: readonly T[], at: string): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    c.add('INV_TUNING_VALUE', `${at}=${String(v)}`, `must be ${allowed.join(' or ')}`, `Electrode's setting is ${String(DEFAULT_TUNING[at.split('.').pop() as keyof TuningSettings])}`);
    return undefined;
  }
  return v as T;
}

export function checkTuning(c: Collector, v: unknown): { tuning: TuningSettings; mtu?: number } {
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
export function alias(c: Collector, obj: Record<string, unknown>, a: string, b: string): unknown {
  if (obj[a] !== undefined && obj[b] !== undefined && obj[a] !== obj[b]) {
    c.add('INV_CONFLICT', `${a}=${String(obj[a])} ${b}=${String(obj[b])}`, `${b} is another name for ${a}`, `give only ${a}`);
  }
  return obj[a] ?? obj[b];
}
