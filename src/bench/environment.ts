/**
 * environment.json: what a reader needs to trust or reproduce the figures:
 * kernel of every node, project commit + dirty flag, plans, build options,
 * XDP mode and NIC queues/offloads per node, CPU pinning, tool versions.
 */
import { xdpPrograms } from '../core/xdp.js';
import { attachedBpfOn } from '../providers/status.js';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../edges/paths.js';
import { Plan, PlanNode } from '../core/plan.js';
import { Runner } from '../edges/runner.js';
import { BenchLab } from './lab.js';

export interface NodeEnvironment {
  kernel: string;
  ifname: string;
  /** `ip -d -j link show dev <if>`: xdp mode (xdp / xdpgeneric / none) and program. */
  xdp: { mode: string; progId?: number; name?: string };
  mtu?: number;
  /** `ethtool -l`: channels (queues). */
  channels: string;
  /** `ethtool -k`: the offloads that matter for XDP, as on/off. */
  offloads: Record<string, string>;
}

/** A replica's NIC right after an arm was attached (the loader may change offloads). */
export interface ArmNodeState {
  xdp: NodeEnvironment['xdp'];
  /** Every eBPF program on the lab NIC, as `status` shows them (`xdp(native) el_xdp_dispatch id 7`, `tc ingress el_tc_ingress id 9`...). */
  programs?: string[];
  offloads: Record<string, string>;
}

export interface HostEnvironment {
  hostname: string;
  kernel: string;
  cpus: { count: number; model: string };
  memoryMiB: number;
  node: string;
  tools: Record<string, string>;
  git: { commit: string; dirty: boolean; describe?: string };
  build: Record<string, string[]>;
  cpuPinning: string;
  corePattern?: string;
}

export interface EnvironmentFile {
  kind: 'electrode-lab-bench-environment';
  version: 1;
  collectedAt: string;
  host: HostEnvironment;
  /** Per replica count: the plan and each node's view. */
  labs: Record<string, { plan: Plan; nodes: Record<string, NodeEnvironment>; arms: Record<string, Record<string, ArmNodeState>> }>;
}

const firstLine = (s: string) => s.split('\n').find((l) => l.trim())?.trim() ?? '';

async function out(runner: Runner, argv: string[], cwd?: string): Promise<string> {
  const r = await runner.run(argv, { check: false, timeoutMs: 15_000, cwd });
  if (r.exitCode !== 0) return `unavailable (${firstLine(r.stderr) || `exit ${r.exitCode}`})`;
  return r.stdout.trim();
}

/** Compiler/linker flag assignments from a Makefile (CFLAGS, LDLIBS, ...). */
export function makefileFlags(text: string): string[] {
  return text
    .replace(/\s*\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(CC|CLANG|CFLAGS|CPPFLAGS|LDFLAGS|LDLIBS|LIBS|BPF_CFLAGS|ASAN_CFLAGS|SAN_FLAGS|SANITIZE|[A-Z_]*FLAGS)\s*[:+?]?=/.test(l));
}

async function buildOptions(runner: Runner, root: string): Promise<Record<string, string[]>> {
  const build: Record<string, string[]> = {};
  for (const dir of ['native', 'bpf']) {
    const mk = join(root, dir, 'Makefile');
    if (!existsSync(mk)) {
      build[dir] = ['no Makefile'];
      continue;
    }
    // a print-flags target, when the Makefile has one, knows the effective values
    const r = await runner.run(['make', '-s', '-C', join(root, dir), 'print-flags'], { check: false, timeoutMs: 15_000 });
    build[dir] = r.exitCode === 0 && r.stdout.trim() ? r.stdout.trim().split('\n') : makefileFlags(readFileSync(mk, 'utf8'));
  }
  return build;
}

export async function hostEnvironment(runner: Runner, corePattern?: string): Promise<HostEnvironment> {
  const root = projectRoot();
  const cpuList = cpus();
  const tools: Record<string, string> = {};
  tools.clang = firstLine(await out(runner, ['clang', '--version']));
  tools.bpftool = firstLine(await out(runner, ['bpftool', 'version']));
  tools.gdb = firstLine(await out(runner, ['gdb', '--version']));
  tools.iproute2 = firstLine(await out(runner, ['ip', '-V']));
  tools.libbpf = firstLine(await out(runner, ['dpkg-query', '-W', '-f', '${Version}', 'libbpf-dev']));
  tools.node = process.version;
  const commit = await out(runner, ['git', '-C', root, 'rev-parse', 'HEAD']);
  const status = await out(runner, ['git', '-C', root, 'status', '--porcelain', '--untracked-files=no']);
  const describe = await out(runner, ['git', '-C', root, 'describe', '--always', '--dirty']);
  return {
    hostname: hostname(),
    kernel: await out(runner, ['uname', '-r']),
    cpus: { count: cpuList.length, model: cpuList[0]?.model ?? 'unknown' },
    memoryMiB: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    tools,
    git: { commit, dirty: status.length > 0 && !status.startsWith('unavailable'), describe },
    build: await buildOptions(runner, root),
    cpuPinning: 'none: replicas and client are not pinned (taskset/--cpu not used); the scheduler places them',
    ...(corePattern ? { corePattern } : {}),
  };
}

/** XDP state of a link from `ip -d -j link show` JSON (src/core/xdp.ts parses it). */
export function xdpOf(ipLinkJson: string): NodeEnvironment['xdp'] {
  const progs = xdpPrograms(ipLinkJson);
  const p = progs[0];
  if (!p) return { mode: ipLinkJson.trim().startsWith('[') ? 'none' : 'unknown' };
  return { mode: progs.length > 1 ? 'multi' : p.mode, ...(p.id !== undefined ? { progId: p.id } : {}), ...(p.name ? { name: p.name } : {}) };
}

export function mtuOf(ipLinkJson: string): number | undefined {
  try {
    return (JSON.parse(ipLinkJson) as { mtu?: number }[])[0]?.mtu;
  } catch {
    return undefined;
  }
}

const OFFLOADS = ['rx-checksumming', 'tx-checksumming', 'scatter-gather', 'tcp-segmentation-offload', 'generic-segmentation-offload', 'generic-receive-offload', 'large-receive-offload', 'rx-gro-hw'];

export function offloadsOf(ethtoolK: string): Record<string, string> {
  const o: Record<string, string> = {};
  for (const line of ethtoolK.split('\n')) {
    const m = /^([\w-]+):\s+(on|off)/.exec(line.trim());
    if (m && OFFLOADS.includes(m[1]!)) o[m[1]!] = m[2]!;
  }
  return o;
}

export async function armNodeState(lab: BenchLab, node: PlanNode): Promise<ArmNodeState> {
  const n = lab.node(node);
  const { bpf, link } = await attachedBpfOn((argv) => n.exec(argv, { check: false }), node.ifname);
  const k = await n.exec(['ethtool', '-k', node.ifname], { check: false });
  return { xdp: link.exitCode === 0 ? xdpOf(link.stdout) : { mode: 'unknown' }, programs: bpf, offloads: k.exitCode === 0 ? offloadsOf(k.stdout) : {} };
}

export async function nodeEnvironment(lab: BenchLab, node: PlanNode): Promise<NodeEnvironment> {
  const ex = async (argv: string[]) => {
    const r = await lab.node(node).exec(argv, { check: false, timeoutMs: 15_000 });
    return r.exitCode === 0 ? r.stdout.trim() : `unavailable (${firstLine(r.stderr) || `exit ${r.exitCode}`})`;
  };
  const link = await ex(['ip', '-d', '-j', 'link', 'show', 'dev', node.ifname]);
  const mtu = mtuOf(link);
  return {
    kernel: await ex(['uname', '-r']),
    ifname: node.ifname,
    xdp: xdpOf(link),
    ...(mtu !== undefined ? { mtu } : {}),
    channels: await ex(['ethtool', '-l', node.ifname]),
    offloads: offloadsOf(await ex(['ethtool', '-k', node.ifname])),
  };
}
