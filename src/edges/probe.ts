/**
 * Host facts and preconditions. This is where the outside world is looked
 * at, so that spec -> plan can stay pure (plan.ts takes HostFacts as data).
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Diagnostic } from '../core/diagnostics.js';
import { HostFacts } from '../core/plan.js';
import { listLabs } from './state.js';

/** A tool a provider needs and the Debian package that ships it. */
export interface Tool {
  cmd: string;
  pkg: string;
  why?: string;
}

export const NETNS_TOOLS: Tool[] = [
  { cmd: 'ip', pkg: 'iproute2', why: 'namespaces, veths, bridge' },
  { cmd: 'tc', pkg: 'iproute2', why: 'TC egress programs' },
  { cmd: 'nsenter', pkg: 'util-linux', why: 'run commands inside a node' },
  { cmd: 'mount', pkg: 'mount', why: 'mount the bpffs' },
  { cmd: 'kill', pkg: 'procps', why: 'stop lab processes' },
  { cmd: 'sysctl', pkg: 'procps', why: 'per-namespace settings' },
  { cmd: 'ethtool', pkg: 'ethtool', why: 'GRO on the switch-side veths (NAPI for native XDP_TX)' },
  { cmd: 'bpftool', pkg: 'bpftool', why: 'inspect eBPF programs and maps' },
  { cmd: 'clang', pkg: 'clang', why: 'build the eBPF programs' },
  { cmd: 'make', pkg: 'make', why: 'build native/ and bpf/' },
  { cmd: 'gdb', pkg: 'gdb', why: 'backtraces from replica cores' },
];

/** Finds an executable on PATH (plus the sbin folders root usually has). */
export function which(cmd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean);
  for (const d of dirs) {
    const p = join(d, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

/** Every missing tool at once, each with its Debian package. */
export function missingTools(tools: Tool[], env: NodeJS.ProcessEnv = process.env): Diagnostic[] {
  const missing = tools.filter((t) => !which(t.cmd, env));
  if (!missing.length) return [];
  const pkgs = [...new Set(missing.map((t) => t.pkg))].join(' ');
  return missing.map((t) => ({
    code: 'HOST_MISSING_TOOL',
    subject: t.cmd,
    message: `not found on PATH${t.why ? ` (needed for ${t.why})` : ''}`,
    hint: `apt-get install ${t.pkg}  (all missing: apt-get install ${pkgs})`,
  }));
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function rootDiagnostic(what: string): Diagnostic[] {
  return isRoot() ? [] : [{ code: 'HOST_NOT_ROOT', subject: `uid=${process.getuid?.() ?? '?'}`, message: `${what} needs root`, hint: 'run it as root (sudo -E npx electrode-lab ...)' }];
}

/** vagrant plus the vagrant-libvirt plugin (Debian package or `vagrant plugin install`) plus virsh. */
export function vagrantLibvirtInstalled(env: NodeJS.ProcessEnv = process.env): boolean {
  if (!which('vagrant', env) || !which('virsh', env)) return false;
  if (existsSync('/usr/share/vagrant-plugins/plugins.d/vagrant-libvirt.json')) return true;
  const home = env.VAGRANT_HOME || join(homedir(), '.vagrant.d');
  try {
    return readFileSync(join(home, 'plugins.json'), 'utf8').includes('vagrant-libvirt');
  } catch {
    return false;
  }
}

/**
 * KVM counts as usable only when proven: on our machines /dev/kvm is a PVM
 * backend that cannot boot stock kernels (REFERENCE.md 5). Opt in with
 * ELECTRODE_LAB_KVM=1.
 */
export function kvmUsable(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.ELECTRODE_LAB_KVM !== '1') return false;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** IPv4 routes of the root namespace, read from /proc (no traffic, no changes). */
export function hostSubnets(): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = f[1]!;
    const mask = f[7]!;
    // /proc/net/route prints addresses as little-endian hex
    const le = (h: string) => {
      const n = parseInt(h, 16);
      return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
    };
    const m = le(mask);
    const prefix = m.reduce((a, b) => a + (b.toString(2).match(/1/g)?.length ?? 0), 0);
    if (prefix === 0) continue;
    out.push(`${le(dest).join('.')}/${prefix}`);
  }
  return [...new Set(out)].sort();
}

export function probeHostFacts(home: string, env: NodeJS.ProcessEnv = process.env): HostFacts {
  return {
    labsUp: listLabs(home).map((l) => ({ name: l.name, subnet: l.subnet, provider: l.provider })),
    vagrantAvailable: vagrantLibvirtInstalled(env),
    kvmUsable: kvmUsable(env),
    hostSubnets: hostSubnets(),
  };
}
