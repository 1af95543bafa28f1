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
import { Diagnostic, DiagnosticsError } from '../../core/diagnostics.js';
import { formatCidr, parseCidr } from '../../core/ipv4.js';
import { NodeRole, lastNodePort } from '../../core/plan.js';
import { DEFAULT_SPEC, MAX_CLIENTS, MAX_REPLICAS, MIN_REPLICAS } from '../../core/spec.js';
import { isIfname } from './facts.js';
import { DEFAULT_SSH_PORT, DEFAULT_SSH_USER, Inventory, InventoryInput, InventoryNode, SshTarget } from './inventoryShape.js';
import {
  alias, checkHost, checkJump, checkKey, checkLabIp, checkMac, checkMtu, checkPort, checkTuning, checkUser, Collector,
  DEFAULT_NIC_KEYS, DEFAULT_SSH_KEYS, isInt, isMapping, LAB_RE, NIC_KEYS, NODE_KEYS, NODE_NAME_RE, SSH_KEYS, TOP_KEYS,
} from './inventoryFields.js';

export * from './inventoryShape.js';
export { hostFactsToNodes } from './adopt.js';
export type { AdoptionResult, HostNetwork, HostNode } from './adopt.js';

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
    const last = lastNodePort(basePort, n, clientCount);
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
