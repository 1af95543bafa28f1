/**
 * Before a hosts lab is planned on its machines: the inventory (the file, or
 * a CloudLab manifest read as one) and the preflight that asks every machine
 * what it is.
 */
import { readFileSync } from 'node:fs';
import { Diagnostic, DiagnosticsError } from '../../core/diagnostics.js';
import { Plan, PlanNode } from '../../core/plan.js';
import { SshSession, sudoCommand } from '../../edges/ssh.js';
import { inventoryFromCloudlabManifest } from './cloudlab.js';
import { HostNicFacts, nicFactsFromIpAddr } from './facts.js';
import { Inventory, inventoryFromText } from './inventory.js';

/** What the provider runs on every machine. */
const TOOLS = ['ip', 'tc', 'ss', 'setsid', 'nohup', 'sha256sum', 'base64', 'ethtool'];

/** The lab's inventory: the file, or the CloudLab manifest read as one. */
export function labInventory(plan: Plan): Inventory {
  const h = plan.spec.hosts ?? {};
  const read = (f: string, what: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new DiagnosticsError([{ code: 'HOSTS_FILE', subject: f, message: `cannot read the ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, hint: `give the path of the ${what}` }], 'inventory');
    }
  };
  if (h.inventory) return inventoryFromText(read(h.inventory, 'inventory'), h.inventory);
  if (h.cloudlabManifest) return inventoryFromCloudlabManifest(read(h.cloudlabManifest, 'CloudLab manifest'), { ...(h.user ? { user: h.user } : {}), ...(h.key ? { key: h.key } : {}), lab: plan.lab });
  throw new DiagnosticsError([{ code: 'SPEC_HOSTS_NO_INVENTORY', subject: 'provider=hosts', message: 'no inventory', hint: 'give --inventory hosts.yaml' }], 'inventory');
}


/**
 * Every machine read over SSH: root, the tools, its lab NIC (address, MTU,
 * MAC), driver and kernel. All the problems of all machines, or their facts.
 */
export async function preflight(inv: Inventory, connect: (name: string, ssh: NonNullable<PlanNode['ssh']>) => Promise<SshSession>): Promise<Record<string, HostNicFacts | undefined>> {
  const d: Diagnostic[] = [];
  const facts: Record<string, HostNicFacts | undefined> = {};
  for (const n of inv.nodes) {
    const subject = `${n.name} (${n.ssh.user}@${n.ssh.host}:${n.ssh.port})`;
    let s: SshSession;
    try {
      s = await connect(n.name, { ...n.ssh });
    } catch (e) {
      d.push({ code: 'HOST_UNREACHABLE', subject, message: (e as Error).message.split('\n')[0]!, hint: 'check ssh.host/port/user/key in the inventory: `ssh -i <key> -p <port> <user>@<host> true` must work' });
      continue;
    }
    const run = (argv: string[]) => s.exec(sudoCommand(argv, n.ssh.user), { check: false, timeoutMs: 30_000 });
    const root = await run(['id', '-u']);
    if (root.stdout.trim() !== '0') d.push({ code: 'HOST_NOT_ROOT', subject, message: `commands do not run as root there (${root.stderr.trim() || `uid ${root.stdout.trim()}`})`, hint: 'log in as root, or give the user passwordless sudo' });
    const missing = (await run(['sh', '-c', TOOLS.map((t) => `command -v ${t} >/dev/null || echo ${t}`).join('; ')])).stdout.trim();
    if (missing) d.push({ code: 'HOST_TOOLS', subject, message: `missing ${missing.split('\n').join(', ')}`, hint: 'apt-get install iproute2 ethtool coreutils util-linux (Debian/Ubuntu)' });
    const addr = await run(['ip', '-j', 'addr', 'show']);
    const nic = nicFactsFromIpAddr(addr.stdout, { ...n.nic, ...(n.ip ? { ip: n.ip } : {}) }, subject);
    d.push(...nic.diagnostics);
    if (!nic.facts) continue;
    const kernel = (await run(['uname', '-r'])).stdout.trim();
    const driver = /^driver:\s*(\S+)/m.exec((await run(['ethtool', '-i', nic.facts.ifname])).stdout)?.[1];
    facts[n.name] = { ...nic.facts, ...(kernel ? { kernel } : {}), ...(driver ? { driver } : {}) };
  }
  if (d.length) throw new DiagnosticsError(d, 'preflight');
  return facts;
}
