/**
 * The eBPF fast paths on a lab's replicas: runs bpf/build/el-loader inside
 * each node through the lab handle (LabNode.exec). Nothing here computes an address: the
 * loader gets the lab's peers.table (rendered from the plan), the node's
 * index, interface (netns: name; VMs: MAC) and pin folder from the plan.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { LabError } from '../core/diagnostics.js';
import { loaderPath } from '../edges/build.js';
import { Plan, PlanNode } from '../core/plan.js';
import { RunResult } from '../edges/runner.js';
import type { OpenLab } from '../providers/lab.js';
import { loaderArgv } from '../core/argv.js';

export type XdpMode = 'native' | 'generic' | 'auto';
export const XDP_MODES: readonly XdpMode[] = ['native', 'generic', 'auto'];

/**
 * Where the ingress fast paths (quorum prune, fast reply) run: the NIC's XDP
 * hook, or TC ingress. On a veth (netns labs) native XDP turns every frame
 * into an XDP buffer, often with a copy, and XDP_TX needs an XDP program on
 * the peer; TC ingress works on the skb as it is. `auto` = the provider's
 * choice (Provider.ingressHook).
 */
export type IngressHook = 'xdp' | 'tc';
export type HookChoice = IngressHook | 'auto';
export const HOOK_CHOICES: readonly HookChoice[] = ['auto', 'xdp', 'tc'];

export interface FastPaths {
  broadcast: boolean;
  quorum: boolean;
  reply: boolean;
}

export const ALL_FAST_PATHS: FastPaths = { broadcast: true, quorum: true, reply: true };

export interface NodeFiles {
  loader: string;
  peers: string;
}

/**
 * The loader and peer table as seen from inside the node: the same absolute
 * paths for every provider (the vagrant provider puts binaries and lab files
 * at the host's paths inside the VMs).
 */
export function nodeFiles(_plan: Plan, peerTableFile: string): NodeFiles {
  return { loader: loaderPath(), peers: peerTableFile };
}

/** bpf/build/el-loader of this checkout (src/edges/build.ts knows every build path). */
export { loaderPath };

/** el-loader attach for one node (its NIC as the provider names it: LabNode.nicArgs). */
export function attachArgv(node: PlanNode, nic: string[], files: NodeFiles, fp: FastPaths, mode: XdpMode, hook: IngressHook = 'xdp'): string[] {
  return loaderArgv.attach(files.loader, { pinDir: node.pinDir, peers: files.peers, index: node.index, nic, fp, hook, xdpMode: mode });
}

export function setArgv(node: PlanNode, files: NodeFiles, fp: FastPaths): string[] {
  return loaderArgv.set(files.loader, node.pinDir, fp);
}

export function fastPathNames(fp: FastPaths): string {
  const on = (['broadcast', 'quorum', 'reply'] as const).filter((k) => fp[k]);
  return on.length ? on.join(',') : 'none';
}

export interface StatCounters {
  seen: number;
  /** Handed on as the fast path intends. */
  passed: number;
  /** Answered or made redundant in the kernel. */
  dropped: number;
  cloned: number;
  replied: number;
  /** Left to user space for a legitimate reason (gap, view change, lease expired, slot not armed, too big). */
  fallback: number;
  /** Fallbacks because the ring buffer was full. */
  full: number;
  /** Malformed frames, failed helpers, missing tail calls. */
  errors: number;
}

export interface NodeBpfStats {
  node: string;
  dispatch: StatCounters;
  broadcast: StatCounters;
  quorum: StatCounters;
  reply: StatCounters;
  /** The TC egress dispatcher: every frame of ours leaving the node. */
  egress: StatCounters;
}

/** One eBPF object as el-loader attach reports it; a rejected one says why. */
export interface AttachObject {
  object: string;
  loaded: boolean;
  meaning?: string;
  verdict?: string;
}

/** `el-loader attach --json` of one node. */
export interface NodeAttach {
  node: string;
  ifname: string;
  /** xdp or tc (TC ingress); absent in records of older loaders (xdp). */
  hook?: string;
  /** native / generic, or none with the TC hook. */
  xdp_mode: string;
  /** Comma list of the fast paths switched on ("none" for none). */
  enabled: string;
  /** Comma list of the fast paths this kernel's verifier accepted. */
  loaded: string;
  objects: AttachObject[];
}

export interface AttachedProgram {
  hook: 'xdp' | 'tc';
  mode: string;
  ifname: string;
  prog: string;
  id: number;
  current: boolean;
}

export interface NodeBpfState {
  node: string;
  pinDir: string;
  pinned: boolean;
  attached: AttachedProgram[];
  ctrl?: Record<string, number>;
  config?: { n_replicas: number; f: number; my_idx: number; enabled: number; fast_paths: string; loaded?: number; loaded_paths?: string; my_port: number };
  fr_state?: { view: number; last_op: number };
  stats?: Omit<NodeBpfStats, 'node'>;
}

const COUNTERS = ['seen', 'passed', 'dropped', 'cloned', 'replied', 'fallback', 'full', 'errors'] as const;
const PROGS = ['dispatch', 'broadcast', 'quorum', 'reply', 'egress'] as const;

/** Parses `el-loader stats --json` (one JSON object). Throws on anything else. */
export function parseStats(node: string, text: string): NodeBpfStats {
  let raw: unknown;
  try {
    raw = JSON.parse(text.trim());
  } catch {
    throw new LabError(`${node}: el-loader stats printed no JSON: ${text.trim().slice(0, 200)}`, 'BPF_STATS');
  }
  const out = { node } as NodeBpfStats;
  for (const p of PROGS) {
    const v = (raw as Record<string, Record<string, unknown>>)[p];
    if (!v) throw new LabError(`${node}: el-loader stats lacks '${p}'`, 'BPF_STATS');
    const c = {} as StatCounters;
    for (const k of COUNTERS) {
      if (typeof v[k] !== 'number') throw new LabError(`${node}: el-loader stats ${p}.${k} is not a number`, 'BPF_STATS');
      c[k] = v[k] as number;
    }
    out[p] = c;
  }
  return out;
}

function failure(node: PlanNode, what: string, r: RunResult): LabError {
  const tail = (r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n');
  return new LabError(`${node.name}: ${what} failed (exit ${r.exitCode ?? r.signal}):\n${tail}`, 'BPF_LOADER');
}

/** Parses `el-loader attach --json`. Throws on anything else. */
export function parseAttach(node: string, text: string): NodeAttach {
  try {
    const j = JSON.parse(text.trim()) as Omit<NodeAttach, 'node'>;
    if (typeof j.loaded !== 'string' || !Array.isArray(j.objects)) throw new Error('shape');
    return { node, ...j };
  } catch {
    throw new LabError(`${node}: el-loader attach printed no JSON: ${text.trim().slice(0, 200)}`, 'BPF_LOADER');
  }
}

/** The fast paths of a list ("none" and "" for none). */
export function fastPathsOf(list: string): FastPaths {
  const on = new Set(list.split(',').filter((x) => x && x !== 'none'));
  return { broadcast: on.has('broadcast'), quorum: on.has('quorum'), reply: on.has('reply') };
}

/** One line per node: what is on, what loaded, and what this kernel refused and why. */
export function formatAttach(results: NodeAttach[]): string[] {
  return results.flatMap((r) => [
    `${r.node}: ${r.hook === 'tc' ? 'tc ingress' : `xdp ${r.xdp_mode}`} on ${r.ifname}, fast paths on: ${r.enabled}, loaded: ${r.loaded}`,
    ...r.objects.filter((o) => !o.loaded).map((o) => `${r.node}:   ${o.object} REJECTED by this kernel's verifier: ${o.meaning ?? '?'}`),
  ]);
}

export interface AttachOptions {
  /** Another peer table than the lab's (the crash-hunt lab plants a wrong one). */
  peers?: string;
  /** Replica indexes in the order to attach (default: all, by index). */
  order?: number[];
}

/** Loads and attaches the fast paths on every replica (replacing stale state); returns what each node loaded. */
export async function attachFastPaths(lab: OpenLab, fp: FastPaths, mode: XdpMode = 'auto', hookChoice: HookChoice = 'auto', opts: AttachOptions = {}): Promise<NodeAttach[]> {
  const { plan, ctx } = lab;
  const files = { ...nodeFiles(plan, ctx.paths.peerTableFile), ...(opts.peers ? { peers: opts.peers } : {}) };
  // an explicit XDP mode asks for the XDP hook; otherwise the provider's choice
  const hook = hookChoice !== 'auto' ? hookChoice : mode !== 'auto' ? 'xdp' : lab.ingressHook;
  const nodes = opts.order ? opts.order.map((i) => lab.replicas()[i]!) : lab.replicas();
  const out: NodeAttach[] = [];
  for (const node of nodes) {
    const r = await node.exec(attachArgv(node.spec, node.nicArgs(), files, fp, mode, hook), { check: false });
    if (r.exitCode !== 0) throw failure(node.spec, 'el-loader attach', r);
    // generic fallback and rejected objects come on stderr: pass them on loudly
    for (const w of r.stderr.split('\n').filter((l) => /WARNING|warning|REJECTED/.test(l))) ctx.progress.warn(`${node.name}: ${w}`);
    await node.afterAttach(hook);
    out.push(ctx.runner.dryRun ? { node: node.name, ifname: node.spec.ifname, hook, xdp_mode: hook === 'tc' ? 'none' : mode, enabled: fastPathNames(fp), loaded: 'broadcast,quorum,reply', objects: [] } : parseAttach(node.name, r.stdout));
  }
  out.sort((a, b) => a.node.localeCompare(b.node, 'en', { numeric: true }));
  if (!ctx.runner.dryRun && existsSync(ctx.paths.root)) writeFileSync(ctx.paths.bpfAttachFile, JSON.stringify(out, null, 2) + '\n');
  return out;
}

/**
 * Fresh eBPF state for ONE replica (a restart): detach it there, attach the
 * same fast paths again with new maps, and record it next to the others'.
 */
export async function reattachFastPaths(lab: OpenLab, index: number, fp: FastPaths, mode: XdpMode = 'auto', hookChoice: HookChoice = 'auto'): Promise<NodeAttach> {
  const { plan, ctx } = lab;
  const before = savedAttach(ctx.paths) ?? [];
  const node = lab.replicas()[index];
  if (!node) throw new LabError(`lab '${plan.lab}' has no replica ${index}`, 'BPF_LOADER');
  const files = nodeFiles(plan, ctx.paths.peerTableFile);
  const d = await node.exec(loaderArgv.detach(files.loader, node.spec.pinDir, node.nicArgs()), { check: false });
  if (d.exitCode !== 0) throw failure(node.spec, 'el-loader detach', d);
  await node.afterDetach();
  const [r] = await attachFastPaths(lab, fp, mode, hookChoice, { order: [index] });
  const merged = [...before.filter((x) => x.node !== r!.node), r!].sort((a, b) => a.node.localeCompare(b.node, 'en', { numeric: true }));
  if (!ctx.runner.dryRun && existsSync(ctx.paths.root)) writeFileSync(ctx.paths.bpfAttachFile, JSON.stringify(merged, null, 2) + '\n');
  return r!;
}

/** What the last attach on this lab loaded, if it is still attached. */
export function savedAttach(paths: { bpfAttachFile: string }): NodeAttach[] | undefined {
  try {
    return existsSync(paths.bpfAttachFile) ? (JSON.parse(readFileSync(paths.bpfAttachFile, 'utf8')) as NodeAttach[]) : undefined;
  } catch {
    return undefined;
  }
}

/** The fast paths in `fp` that some replica could not load, with the kernel's reason; empty = all there. */
export function unavailableFastPaths(results: NodeAttach[], fp: FastPaths): string[] {
  const out: string[] = [];
  for (const r of results) {
    const loaded = fastPathsOf(r.loaded);
    for (const k of ['broadcast', 'quorum', 'reply'] as const) {
      if (!fp[k] || loaded[k]) continue;
      const why = r.objects.filter((o) => !o.loaded).map((o) => `${o.object}: ${o.meaning ?? '?'}`).join('; ');
      out.push(`${r.node}: ${k} did not load (${why || 'not reported'})`);
    }
  }
  return out;
}

/** Switches fast paths on/off at run time (el_config.enabled), no reload. */
export async function setFastPaths(lab: OpenLab, fp: FastPaths): Promise<void> {
  const { plan, ctx } = lab;
  const files = nodeFiles(plan, ctx.paths.peerTableFile);
  for (const node of lab.replicas()) {
    const r = await node.exec(setArgv(node.spec, files, fp), { check: false });
    if (r.exitCode !== 0) throw failure(node.spec, 'el-loader set', r);
  }
}

/** Detaches and unpins on every replica; idempotent. A node that fails does not stop the others: all failures are reported together. */
export async function detachFastPaths(lab: OpenLab): Promise<void> {
  const { plan, ctx } = lab;
  const files = nodeFiles(plan, ctx.paths.peerTableFile);
  const problems: string[] = [];
  for (const node of lab.replicas()) {
    const r = await node.exec(loaderArgv.detach(files.loader, node.spec.pinDir, node.nicArgs()), { check: false });
    if (r.exitCode !== 0) problems.push(failure(node.spec, 'el-loader detach', r).message);
    await node.afterDetach().catch((e: Error) => problems.push(e.message));
  }
  if (!ctx.runner.dryRun) rmSync(ctx.paths.bpfAttachFile, { force: true });
  if (problems.length) throw new LabError(problems.join('\n'), 'BPF_LOADER');
}

/** The counters of every replica. */
export async function fastPathStats(lab: OpenLab): Promise<NodeBpfStats[]> {
  const { plan, ctx } = lab;
  const files = nodeFiles(plan, ctx.paths.peerTableFile);
  const out: NodeBpfStats[] = [];
  for (const node of lab.replicas()) {
    const r = await node.exec(loaderArgv.stats(files.loader, node.spec.pinDir), { check: false });
    if (r.exitCode !== 0) throw failure(node.spec, 'el-loader stats', r);
    out.push(parseStats(node.name, ctx.runner.dryRun ? zeroStatsJson() : r.stdout));
  }
  return out;
}

function zeroStatsJson(): string {
  const z = Object.fromEntries(COUNTERS.map((k) => [k, 0]));
  return JSON.stringify(Object.fromEntries(PROGS.map((p) => [p, z])));
}

/** What is attached where, in which XDP mode, plus el_ctrl/el_config/stats of one node. */
export async function bpfState(lab: OpenLab, node: PlanNode): Promise<NodeBpfState> {
  const { plan, ctx } = lab;
  const files = nodeFiles(plan, ctx.paths.peerTableFile);
  const r = await lab.node(node).exec(loaderArgv.show(files.loader, node.pinDir), { check: false });
  if (r.exitCode !== 0) throw failure(node, 'el-loader show', r);
  if (ctx.runner.dryRun) return { node: node.name, pinDir: node.pinDir, pinned: false, attached: [] };
  try {
    return { node: node.name, ...(JSON.parse(r.stdout.trim()) as Omit<NodeBpfState, 'node'>) };
  } catch {
    throw new LabError(`${node.name}: el-loader show printed no JSON: ${r.stdout.trim().slice(0, 200)}`, 'BPF_SHOW');
  }
}

export function formatStatsTable(stats: NodeBpfStats[]): string {
  const head = ['NODE', 'PROGRAM', ...COUNTERS.map((c) => c.toUpperCase())];
  const rows = stats.flatMap((s) => PROGS.map((p) => [s.node, p, ...COUNTERS.map((c) => String(s[p][c]))]));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cols: string[]) => cols.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}
