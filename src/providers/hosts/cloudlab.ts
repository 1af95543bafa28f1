/**
 * CloudLab, the testbed Electrode was measured on (xl170 raw PCs, UBUNTU20-64-STD):
 * a geni-lib profile that asks for the lab's machines, and the manifest RSpec
 * CloudLab returns once they are ready, turned into an inventory. Pure.
 *
 * Profile API (geni-lib, as CloudLab profiles use it): `portal.Context()`,
 * `defineParameter(name, description, type, default)`, `bindParameters()`,
 * `reportError(portal.ParameterError(msg, [names]))`, `verifyParameters()`,
 * `makeRequestRSpec()`, `request.RawPC(name)` with `hardware_type` and
 * `disk_image`, `node.addInterface(name)` + `iface.addAddress(pg.IPv4Address(a, m))`,
 * `request.LAN(name)` with `best_effort`, `link_multiplexing` and the
 * `setNoBandwidthShaping()` extension that `import geni.rspec.emulab` registers
 * on links (geni/rspec/emulab/emuext.py), then `printRequestRSpec(request)`.
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
import { Diagnostic, DiagnosticsError } from '../../diagnostics.js';
import { parseIpv4 } from '../../ipv4.js';
import { MAX_CLIENTS, MAX_REPLICAS, MIN_REPLICAS } from '../../spec.js';
import { normalizeMac } from './facts.js';
import { Inventory, InventoryInput, InventoryNodeInput, validateInventory } from './inventory.js';
import { childOf, childrenOf, parseXml, XmlElement, XmlError, XmlParse } from './xml.js';

export const GENI_RSPEC_NS = 'http://www.geni.net/resources/rspec/3';
export const EMULAB_NS = 'http://www.protogeni.net/resources/rspec/ext/emulab/1';

// ---------------------------------------------------------------- profile

export const DEFAULT_HARDWARE_TYPE = 'xl170';
/** The image upstream Electrode started from (its README). */
export const DEFAULT_DISK_IMAGE = 'urn:publicid:IDN+emulab.net+image+emulab-ops//UBUNTU20-64-STD';
export const DEFAULT_LAN_NAME = 'electrode-lan';
/** CloudLab's own default for experiment LANs; client j gets .101+j so replica and client addresses never shift. */
export const DEFAULT_LAB_SUBNET = '10.10.1.0/24';
export const PROFILE_CLIENT_OFFSET = 101;

export interface CloudlabProfileOptions {
  replicas: number;
  clients: number;
  hardwareType?: string;
  diskImage?: string;
  lanName?: string;
}

function checkProfile(o: CloudlabProfileOptions): Diagnostic[] {
  const d: Diagnostic[] = [];
  const { replicas, clients } = o;
  if (!Number.isInteger(replicas) || replicas < MIN_REPLICAS || replicas > MAX_REPLICAS) {
    d.push({ code: 'CL_REPLICAS_RANGE', subject: `replicas=${replicas}`, message: `electrode-lab runs ${MIN_REPLICAS} to ${MAX_REPLICAS} replicas`, hint: 'use 3, 5 or 7' });
  } else if (replicas % 2 === 0) {
    d.push({ code: 'CL_EVEN_REPLICAS', subject: `replicas=${replicas}`, message: 'Paxos needs 2f+1 replicas', hint: `use ${replicas - 1} or ${replicas + 1}` });
  }
  if (!Number.isInteger(clients) || clients < 1 || clients > MAX_CLIENTS) {
    d.push({ code: 'CL_CLIENTS_RANGE', subject: `clients=${clients}`, message: `must be 1 to ${MAX_CLIENTS}`, hint: 'one client node with many threads is usually enough' });
  }
  if (o.hardwareType !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/.test(o.hardwareType)) {
    d.push({ code: 'CL_BAD_HARDWARE_TYPE', subject: `hardwareType=${o.hardwareType}`, message: 'not a CloudLab node type', hint: `e.g. ${DEFAULT_HARDWARE_TYPE}, c220g5, m510` });
  }
  if (o.diskImage !== undefined && !/^urn:publicid:IDN\+[A-Za-z0-9.:-]+\+image\+[A-Za-z0-9_.:/-]+$/.test(o.diskImage)) {
    d.push({ code: 'CL_BAD_DISK_IMAGE', subject: `diskImage=${o.diskImage}`, message: 'not an image URN', hint: `e.g. ${DEFAULT_DISK_IMAGE}` });
  }
  if (o.lanName !== undefined && !/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(o.lanName)) {
    d.push({ code: 'CL_BAD_LAN_NAME', subject: `lanName=${o.lanName}`, message: 'LAN names are letters, digits, - and _', hint: `e.g. ${DEFAULT_LAN_NAME}` });
  }
  return d;
}

/** A Python string literal; the inputs are checked to plain ASCII first, where JSON and Python escapes agree. */
const py = (s: string) => JSON.stringify(s);

/**
 * The text of a geni-lib profile.py asking for `replicas` + `clients` raw PCs
 * on one LAN (the counts are portal parameters; the options give their
 * defaults). Deterministic. Throws DiagnosticsError on bad options.
 */
export function renderCloudlabProfile(opts: CloudlabProfileOptions): string {
  const d = checkProfile(opts);
  if (d.length) throw new DiagnosticsError(d, 'cloudlab');
  const hw = opts.hardwareType ?? DEFAULT_HARDWARE_TYPE;
  const image = opts.diskImage ?? DEFAULT_DISK_IMAGE;
  const lan = opts.lanName ?? DEFAULT_LAN_NAME;
  const base = DEFAULT_LAB_SUBNET.split('/')[0]!.split('.').slice(0, 3).join('.');
  return `# Generated by electrode-lab; edits are lost when it is generated again.
# Use on the CloudLab portal: Experiments > Create Experiment Profile >
# "Edit Code", paste this file, Create; then Instantiate it and pick the
# counts. Upstream Electrode ran on ${hw} with ${image.split('+').pop()} and
# kernel 5.8 (installed after boot; see electrode-lab's README).
"""Electrode (NSDI '23) lab: 2f+1 replicas and the client machines on one LAN.

Instructions:
When the experiment is ready, save its manifest (the Manifest tab of the
experiment page) as manifest.xml and give it to electrode-lab's hosts
provider with your CloudLab user name; it reads the machines, their lab
NIC and lab addresses from it.
"""

import geni.portal as portal
import geni.rspec.pg as pg
# registers the Emulab link extensions, e.g. setNoBandwidthShaping()
import geni.rspec.emulab as emulab

pc = portal.Context()
pc.defineParameter("replicas", "Replicas (Paxos needs 2f+1: 3, 5, 7, ... ${MAX_REPLICAS})",
                   portal.ParameterType.INTEGER, ${opts.replicas})
pc.defineParameter("clients", "Client machines (1 to ${MAX_CLIENTS})",
                   portal.ParameterType.INTEGER, ${opts.clients})
pc.defineParameter("hardware_type", "Hardware type of every machine",
                   portal.ParameterType.NODETYPE, ${py(hw)})
pc.defineParameter("disk_image", "Disk image of every machine",
                   portal.ParameterType.IMAGE, ${py(image)})
params = pc.bindParameters()

if params.replicas < ${MIN_REPLICAS} or params.replicas > ${MAX_REPLICAS} or params.replicas % 2 == 0:
    pc.reportError(portal.ParameterError(
        "Paxos needs an odd number of replicas (2f+1) from ${MIN_REPLICAS} to ${MAX_REPLICAS}", ["replicas"]))
if params.clients < 1 or params.clients > ${MAX_CLIENTS}:
    pc.reportError(portal.ParameterError("Use 1 to ${MAX_CLIENTS} client machines", ["clients"]))
pc.verifyParameters()

request = pc.makeRequestRSpec()

# One LAN for the lab traffic, at full rate: not best-effort, not multiplexed
# onto shared links, no bandwidth-shaping node in the path.
lan = request.LAN(${py(lan)})
lan.best_effort = False
lan.link_multiplexing = False
lan.setNoBandwidthShaping()


def add_machine(name, host):
    node = request.RawPC(name)
    node.hardware_type = params.hardware_type
    node.disk_image = params.disk_image
    iface = node.addInterface("if0")
    iface.addAddress(pg.IPv4Address("${base}.%d" % host, "255.255.255.0"))
    lan.addInterface(iface)


# replica i is ${base}.(i+1), client j is ${base}.(${PROFILE_CLIENT_OFFSET}+j)
for i in range(params.replicas):
    add_machine("replica%d" % i, 1 + i)
for j in range(params.clients):
    add_machine("client%d" % j, ${PROFILE_CLIENT_OFFSET} + j)

pc.printRequestRSpec(request)
`;
}

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
