/**
 * The vagrant and virsh command lines the Vagrant provider runs: their
 * environment (libvirt's system connection), vagrant's output kept in the
 * lab's logs, `vagrant status` and `ssh-config` read back, and libvirt swept
 * of what a lab left.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { Plan } from '../core/plan.js';
import { Tool } from '../edges/probe.js';
import { RunResult } from '../edges/runner.js';
import { parseSshConfig, SshTarget } from '../edges/ssh.js';
import { domainPrefix } from './vagrantfile.js';
import { ProviderContext } from './provider.js';

export const VAGRANT_TOOLS: Tool[] = [
  { cmd: 'vagrant', pkg: 'vagrant', why: 'VM lifecycle' },
  { cmd: 'virsh', pkg: 'libvirt-clients', why: 'leftover domains/networks on down' },
  { cmd: 'libvirtd', pkg: 'libvirt-daemon-system', why: 'the libvirt daemon' },
  { cmd: 'qemu-system-x86_64', pkg: 'qemu-system-x86', why: 'the VMs' },
  { cmd: 'tar', pkg: 'tar', why: 'copying sources into VMs' },
];

export const LIBVIRT_URI = 'qemu:///system';

/** vagrant and virsh always talk to libvirt's system connection, quietly. */
export function vagrantEnv(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return { ...env, VAGRANT_DEFAULT_PROVIDER: 'libvirt', VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1', LIBVIRT_DEFAULT_URI: LIBVIRT_URI };
}

export interface VagrantRunOptions {
  check?: boolean;
  /** Whose log gets the output (default: the lab's). */
  node?: string;
  timeoutMs?: number;
}

export async function runVagrant(args: string[], ctx: ProviderContext, env: NodeJS.ProcessEnv, opts: VagrantRunOptions = {}): Promise<RunResult> {
  const r = await ctx.runner.run(['vagrant', ...args], { cwd: ctx.paths.vagrantDir, env: vagrantEnv(env), check: false, timeoutMs: opts.timeoutMs });
  // vagrant's own output (progress bars included) goes to the node's log, not the terminal
  if (!ctx.runner.dryRun) {
    const log = opts.node ? join(ctx.paths.nodeLogDir(opts.node), 'vagrant.log') : join(ctx.paths.logsDir, 'vagrant.log');
    mkdirSync(dirname(log), { recursive: true });
    writeFileSync(log, `\n$ vagrant ${args.join(' ')}  (exit ${r.exitCode}, ${r.durationMs} ms)\n${r.stdout}${r.stderr}`, { flag: 'a' });
  }
  if (opts.check !== false && (r.exitCode !== 0 || r.signal)) {
    const tail = (r.stderr || r.stdout).replace(/\r|\x1b\[K/g, '').trim().split('\n').filter((l) => !/Progress:/.test(l)).slice(-6).join('\n');
    throw new LabError(`\`vagrant ${args.join(' ')}\` failed (exit ${r.exitCode}); full output in ${ctx.paths.logsDir}\n${tail}`, 'VAGRANT_FAILED');
  }
  return r;
}

/** The VM's ssh address, user and key, as `vagrant ssh-config` gives them. */
export async function readSshTarget(node: string, ctx: ProviderContext, env: NodeJS.ProcessEnv): Promise<SshTarget> {
  const r = await runVagrant(['ssh-config', node], ctx, env, { node });
  const t = parseSshConfig(r.stdout).find((x) => x.name === node);
  if (!t) throw new LabError(`\`vagrant ssh-config ${node}\` printed no usable Host block; see ${ctx.paths.nodeLogDir(node)}/vagrant.log`, 'VAGRANT_SSH_CONFIG');
  return t;
}

/** `vagrant status --machine-readable` -> machine -> state (running, shutoff, not_created...). */
export function parseVagrantStatus(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const f = line.split(',');
    if (f[2] === 'state' && f[1]) out.set(f[1], f[3] ?? 'unknown');
  }
  return out;
}

/** Removes this lab's domains, volumes and private network, whatever vagrant left. */
export async function sweepLibvirt(plan: Plan, ctx: ProviderContext, env: NodeJS.ProcessEnv): Promise<void> {
  const r = ctx.runner;
  const virsh = (...a: string[]) => r.run(['virsh', '-q', '-c', LIBVIRT_URI, ...a], { check: false, env: vagrantEnv(env) });
  const names = plan.nodes.map((n) => `${domainPrefix(plan)}${n.name}`);
  const doms = (await virsh('list', '--all', '--name')).stdout.split('\n').map((s) => s.trim());
  for (const d of names.filter((x) => doms.includes(x))) {
    await virsh('destroy', d);
    await virsh('undefine', d, '--remove-all-storage', '--nvram');
  }
  const nets = (await virsh('net-list', '--all', '--name')).stdout.split('\n').map((s) => s.trim());
  if (nets.includes(plan.vm.libvirtNetwork)) {
    await virsh('net-destroy', plan.vm.libvirtNetwork);
    await virsh('net-undefine', plan.vm.libvirtNetwork);
  }
  const vols = (await virsh('vol-list', 'default')).stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '');
  for (const v of vols.filter((v) => names.some((n) => v.startsWith(`${n}.`) || v.startsWith(`${n}-`)))) await virsh('vol-delete', '--pool', 'default', v);
}
