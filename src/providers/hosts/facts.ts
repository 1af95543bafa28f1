/**
 * Facts of an existing machine, parsed from the text its tools print (pure).
 * The hosts provider runs the commands over SSH; these functions only read
 * their output: `ip -j addr show` for the lab NIC's name, MAC, MTU and IPv4.
 */
import { Diagnostic } from '../../core/diagnostics.js';
import { parseCidr, parseIpv4 } from '../../core/ipv4.js';

/** `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` or `aabbccddeeff` (RSpec manifests) -> lower-case colon form; undefined if not a MAC. */
export function normalizeMac(text: string): string | undefined {
  const t = text.trim().toLowerCase();
  let hex: string;
  if (/^[0-9a-f]{12}$/.test(t)) hex = t;
  else if (/^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/.test(t)) hex = t.replace(/[:-]/g, '');
  else return undefined;
  return hex.match(/../g)!.join(':');
}

/** A MAC a lab NIC can have: unicast (I/G bit clear) and not all zeros. */
export function isUnicastMac(mac: string): boolean {
  return mac !== '00:00:00:00:00:00' && (parseInt(mac.slice(0, 2), 16) & 1) === 0;
}

/** Interface names the kernel accepts: 1-15 bytes, no '/', ':' or whitespace, not '.' or '..'. */
export function isIfname(name: string): boolean {
  return /^[^\s/:]{1,15}$/.test(name) && name !== '.' && name !== '..';
}

/** `a.b.c.d/len` -> parts, or undefined. */
export function parseHostCidr(text: string): { address: string; prefix: number; addr: number } | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(text.trim());
  if (!m) return undefined;
  const addr = parseIpv4(m[1]!);
  const prefix = Number(m[2]);
  if (addr === undefined || prefix < 1 || prefix > 32 || !parseCidr(text)) return undefined;
  return { address: m[1]!, prefix, addr };
}

/** What a machine says about its lab NIC: what `hostFactsToNodes` adopts. */
export interface HostNicFacts {
  /** `a.b.c.d/len`; undefined when the NIC has no IPv4 yet. */
  ip?: string;
  mac: string;
  ifname: string;
  mtu?: number;
  /** `ethtool -i` driver, e.g. mlx5_core. */
  driver?: string;
  /** `uname -r`. */
  kernel?: string;
}

export interface IpLinkInfo {
  ifname: string;
  mac?: string;
  mtu?: number;
  operstate?: string;
  ipv4: string[];
}

/** Parses `ip -j link show [dev]` or `ip -j addr show [dev]` (iproute2 JSON; addr adds `addr_info`). Throws on non-JSON. */
export function parseIpJson(text: string): IpLinkInfo[] {
  const raw: unknown = JSON.parse(text.trim() === '' ? '[]' : text);
  if (!Array.isArray(raw)) throw new Error('expected a JSON array from `ip -j`');
  const out: IpLinkInfo[] = [];
  for (const e of raw) {
    if (typeof e !== 'object' || e === null) continue;
    const o = e as Record<string, unknown>;
    if (typeof o.ifname !== 'string') continue;
    const mac = typeof o.address === 'string' ? normalizeMac(o.address) : undefined;
    const ipv4: string[] = [];
    if (Array.isArray(o.addr_info)) {
      for (const a of o.addr_info as Record<string, unknown>[]) {
        if (a && a.family === 'inet' && typeof a.local === 'string' && typeof a.prefixlen === 'number') ipv4.push(`${a.local}/${a.prefixlen}`);
      }
    }
    out.push({
      ifname: o.ifname,
      ...(mac ? { mac } : {}),
      ...(typeof o.mtu === 'number' ? { mtu: o.mtu } : {}),
      ...(typeof o.operstate === 'string' ? { operstate: o.operstate } : {}),
      ipv4,
    });
  }
  return out;
}

/**
 * Finds the lab NIC in `ip -j addr show` output by name and/or MAC and picks
 * its lab IPv4: the one the inventory states, else the only one. `subject`
 * names the node in diagnostics (e.g. `nodes[2] (pc417.utah.cloudlab.us)`).
 */
export function nicFactsFromIpAddr(
  ipAddrJson: string,
  want: { name?: string; mac?: string; ip?: string },
  subject: string,
): { facts?: HostNicFacts; diagnostics: Diagnostic[] } {
  let links: IpLinkInfo[];
  try {
    links = parseIpJson(ipAddrJson);
  } catch (e) {
    return { diagnostics: [{ code: 'HOST_BAD_OUTPUT', subject, message: `cannot read \`ip -j addr show\`: ${(e as Error).message}`, hint: 'iproute2 4.14 or newer prints JSON with -j' }] };
  }
  const mac = want.mac ? normalizeMac(want.mac) : undefined;
  const hits = links.filter((l) => (want.name === undefined || l.ifname === want.name) && (mac === undefined || l.mac === mac));
  const have = links.map((l) => `${l.ifname}${l.mac ? ` (${l.mac})` : ''}`).join(', ') || 'none';
  const wanted = [want.name && `name ${want.name}`, mac && `MAC ${mac}`].filter(Boolean).join(' and ');
  if (hits.length !== 1) {
    return {
      diagnostics: [
        {
          code: hits.length ? 'HOST_NIC_AMBIGUOUS' : 'HOST_NIC_NOT_FOUND',
          subject,
          message: hits.length ? `${hits.length} interfaces match ${wanted}` : `no interface with ${wanted}`,
          hint: `the machine has ${have}; fix nic.name / nic.mac in the inventory`,
        },
      ],
    };
  }
  const l = hits[0]!;
  if (!l.mac) return { diagnostics: [{ code: 'HOST_NIC_NO_MAC', subject, message: `${l.ifname} has no Ethernet address`, hint: 'the lab NIC must be an Ethernet device' }] };
  let ip: string | undefined;
  const w = want.ip !== undefined ? parseHostCidr(want.ip) : undefined;
  const stated = w && l.ipv4.find((a) => parseHostCidr(a)?.addr === w.addr);
  if (stated) {
    ip = stated;
  } else if (l.ipv4.length === 1) {
    // when the inventory stated another address, hostFactsToNodes reports the mismatch
    ip = l.ipv4[0];
  } else if (l.ipv4.length > 1) {
    return {
      diagnostics: [
        {
          code: w ? 'HOST_IP_MISMATCH' : 'HOST_IP_AMBIGUOUS',
          subject,
          message: `${l.ifname} has ${l.ipv4.length} IPv4 addresses (${l.ipv4.join(', ')})${w ? `, none of them ${want.ip}` : ''}`,
          hint: w ? 'fix `ip:` in the inventory, or remove the other addresses' : 'state the lab address with `ip:` in the inventory',
        },
      ],
    };
  }
  // no IPv4 at all: the provider adds the stated one (hostFactsToNodes marks it ipSource 'inventory')
  return { facts: { ifname: l.ifname, mac: l.mac, ...(ip ? { ip } : {}), ...(l.mtu !== undefined ? { mtu: l.mtu } : {}) }, diagnostics: [] };
}
