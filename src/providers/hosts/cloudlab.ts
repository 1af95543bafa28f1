/**
 * CloudLab, the testbed Electrode was measured on (xl170 raw PCs, UBUNTU20-64-STD):
 * a geni-lib profile that asks for the lab's machines, and the manifest RSpec
 * CloudLab returns once they are ready, turned into an inventory. Pure. The
 * profile is cloudlabProfile.ts.
 *
 * Manifest facts (GENI RSpec v3, namespace http://www.geni.net/resources/rspec/3;
 * ProtoGENI's RSpec reference and manifests CloudLab returns): the root
 * `<rspec type="manifest">`; per `<node client_id component_id>`:
 * `<interface client_id component_id mac_address>` with `<ip address netmask
 * type="ipv4"/>`, `<services><login authentication="ssh-keys" hostname port
 * username/>` (one login per project member with keys), `<host name ipv4/>`
 * (the control-network FQDN) and `<emulab:vnode name hardware_type/>`
 * (ns http://www.protogeni.net/resources/rspec/ext/emulab/1); `<link client_id>`
 * lists its `<interface_ref client_id/>`. MACs come as 12 hex digits without colons.
 */
import { Diagnostic, DiagnosticsError } from '../../core/diagnostics.js';
import { parseIpv4 } from '../../core/ipv4.js';
import { normalizeMac } from './facts.js';
import { Inventory, InventoryInput, InventoryNodeInput, validateInventory } from './inventory.js';
import { childOf, childrenOf, parseXml, XmlElement, XmlError, XmlParse } from './xml.js';

import { DEFAULT_LAN_NAME } from './cloudlabProfile.js';

export * from './cloudlabProfile.js';

export const GENI_RSPEC_NS = 'http://www.geni.net/resources/rspec/3';
export const EMULAB_NS = 'http://www.protogeni.net/resources/rspec/ext/emulab/1';

// ---------------------------------------------------------------- manifest

export interface ManifestInterface {
  /** e.g. `replica0:if0`. */
  clientId: string;
  componentId?: string;
  /** Lower-case colon form. */
  mac?: string;
  ipv4?: string;
  netmask?: string;
  /** From the netmask. */
  prefix?: number;
}

export interface ManifestNode {
  /** The profile's name, e.g. `replica0`. */
  clientId: string;
  componentId?: string;
  /** The control-network FQDN from `<host name>`, e.g. replica0.exp.proj.utah.cloudlab.us. */
  hostname?: string;
  /** Where to SSH: the login host (e.g. pc417.utah.cloudlab.us), else the host name. */
  sshHost: string;
  sshPort: number;
  /** The first login's user (the manifest lists one login per project member). */
  user?: string;
  users: string[];
  /** `<emulab:vnode hardware_type>`, e.g. xl170. */
  hardwareType?: string;
  interfaces: ManifestInterface[];
}

export interface ManifestLink {
  clientId: string;
  /** client_ids of the interfaces on the link. */
  interfaces: string[];
}

export interface CloudlabManifest {
  nodes: ManifestNode[];
  links: ManifestLink[];
  diagnostics: Diagnostic[];
}

function prefixOf(netmask: string): number | undefined {
  const m = parseIpv4(netmask);
  if (m === undefined) return undefined;
  const bits = m.toString(2).padStart(32, '0');
  if (!/^1*0*$/.test(bits)) return undefined; // not contiguous
  const zero = bits.indexOf('0');
  return zero === -1 ? 32 : zero;
}

/** Parses a GENI v3 manifest RSpec. Diagnostics, not throws, for what it lacks; `parse` is the XML parser (swap point). */
export function parseCloudlabManifest(xml: string, parse: XmlParse = parseXml): CloudlabManifest {
  const d: Diagnostic[] = [];
  let root: XmlElement;
  try {
    root = parse(xml);
  } catch (e) {
    const msg = e instanceof XmlError ? e.message : String(e);
    return { nodes: [], links: [], diagnostics: [{ code: 'CL_XML', subject: 'manifest', message: `not well-formed XML: ${msg}`, hint: 'save the manifest exactly as the portal shows it' }] };
  }
  if (root.local !== 'rspec') {
    return { nodes: [], links: [], diagnostics: [{ code: 'CL_NOT_RSPEC', subject: `<${root.local}>`, message: 'the root element is not <rspec>', hint: 'save the experiment\'s manifest RSpec' }] };
  }
  if (root.ns !== GENI_RSPEC_NS) {
    return { nodes: [], links: [], diagnostics: [{ code: 'CL_RSPEC_VERSION', subject: `xmlns=${root.ns}`, message: `not a GENI v3 RSpec (${GENI_RSPEC_NS})`, hint: 'CloudLab returns v3 manifests; re-download it from the portal' }] };
  }
  const type = root.attrs.type;
  if (type !== 'manifest') {
    return {
      nodes: [],
      links: [],
      diagnostics: [
        {
          code: 'CL_NOT_MANIFEST',
          subject: `type=${type ?? '(none)'}`,
          message: type === 'request' ? 'this is a request RSpec (what the profile asks for), not the manifest' : 'not a manifest RSpec',
          hint: 'once the experiment is ready, save the Manifest tab of the experiment page',
        },
      ],
    };
  }
  const nodes: ManifestNode[] = [];
  for (const n of childrenOf(root, 'node', GENI_RSPEC_NS)) {
    const clientId = n.attrs.client_id;
    if (!clientId) {
      d.push({ code: 'CL_NODE_NO_ID', subject: `manifest line ${n.line}`, message: '<node> without client_id', hint: 'the manifest is truncated or not from CloudLab' });
      continue;
    }
    const at = `node ${clientId}`;
    const host = childOf(n, 'host', GENI_RSPEC_NS);
    const services = childOf(n, 'services', GENI_RSPEC_NS);
    const logins = services ? childrenOf(services, 'login', GENI_RSPEC_NS).filter((l) => (l.attrs.authentication ?? 'ssh-keys') === 'ssh-keys') : [];
    const first = logins[0];
    const sshHost = first?.attrs.hostname ?? host?.attrs.name;
    if (!sshHost) {
      d.push({ code: 'CL_NO_LOGIN', subject: at, message: 'the manifest has no login host for this node', hint: 'wait until the experiment is ready, then save the manifest again' });
      continue;
    }
    const portText = first?.attrs.port ?? '22';
    const sshPort = /^\d{1,5}$/.test(portText) && Number(portText) >= 1 && Number(portText) <= 65535 ? Number(portText) : undefined;
    if (sshPort === undefined) {
      d.push({ code: 'CL_BAD_PORT', subject: `${at}: port=${portText}`, message: 'not a TCP port', hint: 'check the <login> element of this node' });
      continue;
    }
    const users = [...new Set(logins.map((l) => l.attrs.username).filter((u): u is string => !!u))];
    const interfaces: ManifestInterface[] = [];
    for (const i of childrenOf(n, 'interface', GENI_RSPEC_NS)) {
      const iid = i.attrs.client_id ?? '';
      const ifc: ManifestInterface = { clientId: iid, ...(i.attrs.component_id ? { componentId: i.attrs.component_id } : {}) };
      if (i.attrs.mac_address !== undefined) {
        const mac = normalizeMac(i.attrs.mac_address);
        if (mac) ifc.mac = mac;
        else d.push({ code: 'CL_BAD_MAC', subject: `${at}: interface ${iid} mac_address=${i.attrs.mac_address}`, message: 'not a MAC address', hint: 'the manifest is damaged; save it again' });
      }
      const ip = childrenOf(i, 'ip', GENI_RSPEC_NS).find((x) => (x.attrs.type ?? 'ipv4') === 'ipv4');
      if (ip) {
        const addr = ip.attrs.address ?? '';
        const prefix = prefixOf(ip.attrs.netmask ?? '');
        if (parseIpv4(addr) === undefined || prefix === undefined) {
          d.push({ code: 'CL_BAD_IP', subject: `${at}: interface ${iid} ip=${addr}/${ip.attrs.netmask ?? ''}`, message: 'not an IPv4 address and netmask', hint: 'the manifest is damaged; save it again' });
        } else Object.assign(ifc, { ipv4: addr, netmask: ip.attrs.netmask!, prefix });
      }
      interfaces.push(ifc);
    }
    const vnode = childOf(n, 'vnode', EMULAB_NS);
    nodes.push({
      clientId,
      ...(n.attrs.component_id ? { componentId: n.attrs.component_id } : {}),
      ...(host?.attrs.name ? { hostname: host.attrs.name } : {}),
      sshHost,
      sshPort,
      ...(users[0] ? { user: users[0] } : {}),
      users,
      ...(vnode?.attrs.hardware_type ? { hardwareType: vnode.attrs.hardware_type } : {}),
      interfaces,
    });
  }
  if (!nodes.length && !d.length) d.push({ code: 'CL_NO_NODES', subject: 'manifest', message: 'the manifest lists no nodes', hint: 'save the manifest of the experiment, after it is ready' });
  const links: ManifestLink[] = childrenOf(root, 'link', GENI_RSPEC_NS).map((l) => ({
    clientId: l.attrs.client_id ?? '',
    interfaces: childrenOf(l, 'interface_ref', GENI_RSPEC_NS).map((r) => r.attrs.client_id ?? ''),
  }));
  return { nodes, links, diagnostics: d };
}

// ---------------------------------------------------------------- manifest -> inventory

export interface ManifestToInventoryOptions {
  /** Your CloudLab user (the manifest lists every project member's login). */
  user?: string;
  /** Private key file for that user. */
  key?: string;
  /** The lab LAN's client_id when nodes have several interfaces (default: the profile's electrode-lan). */
  lan?: string;
  lab?: string;
  mtu?: number;
}

const ROLE_RE = /^(replica|client)(\d+)$/;

/**
 * The manifest's replica<i> / client<j> nodes as an inventory (validate it
 * with validateInventory): roles from the names, the lab NIC by the MAC of
 * the interface on the lab LAN, its IP from the manifest. Other nodes (e.g.
 * blockstores) are left out. Throws DiagnosticsError when the manifest has
 * problems or the user cannot be told.
 */
export function manifestToInventory(manifest: CloudlabManifest, opts: ManifestToInventoryOptions = {}): InventoryInput {
  const d: Diagnostic[] = [...manifest.diagnostics];
  const lab = manifest.nodes
    .map((n) => ({ n, m: ROLE_RE.exec(n.clientId) }))
    .filter((x): x is { n: ManifestNode; m: RegExpExecArray } => !!x.m)
    .sort((a, b) => (a.m[1] === b.m[1] ? Number(a.m[2]) - Number(b.m[2]) : a.m[1] === 'replica' ? -1 : 1));
  if (!lab.length && !d.length) {
    d.push({
      code: 'CL_NO_LAB_NODES',
      subject: 'manifest',
      message: `no node is named replica<i> or client<j> (it has ${manifest.nodes.map((n) => n.clientId).join(', ') || 'none'})`,
      hint: 'instantiate the profile from `electrode-lab cloudlab profile`, or write the inventory by hand',
    });
  }
  // the inventory indexes nodes by order within a role, so replica<i> must be the i-th replica
  for (const role of ['replica', 'client']) {
    const nums = lab.filter((x) => x.m[1] === role).map((x) => Number(x.m[2]));
    if (nums.some((k, i) => k !== i)) {
      d.push({ code: 'CL_NODE_NAMES', subject: `${role}: ${nums.map((k) => `${role}${k}`).join(', ')}`, message: `${role} numbers must run 0, 1, 2, ... without gaps`, hint: 'instantiate the profile from electrode-lab unchanged, or write the inventory by hand' });
    }
  }
  const lanName = opts.lan ?? DEFAULT_LAN_NAME;
  const lanLink = manifest.links.find((l) => l.clientId === lanName);
  if (opts.lan !== undefined && !lanLink) {
    d.push({ code: 'CL_NO_LAN', subject: `lan=${opts.lan}`, message: 'no link with this client_id', hint: `links: ${manifest.links.map((l) => l.clientId).join(', ') || 'none'}` });
  }

  // which login: the one named, else the only one all lab nodes share
  let user = opts.user;
  const shared = lab.length ? lab.map((x) => x.n.users).reduce((a, b) => a.filter((u) => b.includes(u))) : [];
  if (user !== undefined) {
    for (const { n } of lab) {
      if (n.users.length && !n.users.includes(user)) {
        d.push({ code: 'CL_UNKNOWN_USER', subject: `user=${user}`, message: `${n.clientId} has no login for ${user}`, hint: `its logins: ${n.users.join(', ')}` });
      }
    }
  } else if (shared.length === 1) {
    user = shared[0];
  } else if (lab.length) {
    d.push({
      code: 'CL_AMBIGUOUS_USER',
      subject: 'user',
      message: shared.length ? `the manifest lists ${shared.length} logins for every node` : 'the nodes share no login',
      hint: shared.length ? `name yours, one of: ${shared.join(', ')}` : 'name your CloudLab user',
    });
  }

  const nodes: InventoryNodeInput[] = [];
  for (const { n, m } of lab) {
    const onLan = lanLink ? n.interfaces.filter((i) => lanLink.interfaces.includes(i.clientId)) : n.interfaces;
    if (onLan.length !== 1) {
      d.push({
        code: 'CL_LAB_NIC',
        subject: `node ${n.clientId}`,
        message: onLan.length ? `${onLan.length} interfaces could be the lab NIC (${onLan.map((i) => i.clientId).join(', ')})` : 'no interface on the lab LAN',
        hint: `name the lab LAN (links: ${manifest.links.map((l) => l.clientId).join(', ') || 'none'})`,
      });
      continue;
    }
    const ifc = onLan[0]!;
    if (!ifc.mac) {
      d.push({ code: 'CL_NO_MAC', subject: `node ${n.clientId}: interface ${ifc.clientId}`, message: 'the manifest gives no MAC for the lab NIC', hint: 'wait until the experiment is ready, then save the manifest again' });
      continue;
    }
    nodes.push({
      name: n.clientId,
      role: m[1] as 'replica' | 'client',
      ssh: { host: n.sshHost, port: n.sshPort, ...(user ? { user } : {}), ...(opts.key ? { key: opts.key } : {}) },
      nic: { mac: ifc.mac },
      ...(ifc.ipv4 !== undefined ? { ip: `${ifc.ipv4}/${ifc.prefix}` } : {}),
    });
  }
  if (d.length) throw new DiagnosticsError(d, 'cloudlab');
  return { ...(opts.lab ? { lab: opts.lab } : {}), ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}), nodes };
}

/** Manifest text -> a validated inventory in one call; throws DiagnosticsError with every problem. */
export function inventoryFromCloudlabManifest(xml: string, opts: ManifestToInventoryOptions = {}): Inventory {
  const { inventory, diagnostics } = validateInventory(manifestToInventory(parseCloudlabManifest(xml), opts));
  if (!inventory) throw new DiagnosticsError(diagnostics, 'inventory');
  return inventory;
}
