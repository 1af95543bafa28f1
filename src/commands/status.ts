/** `electrode-lab status [--json]`: nodes, addresses, MACs, processes, attached eBPF. */
import { Command } from 'commander';
import { bpfState, savedAttach } from '../lab/bpf.js';
import { Plan, replicas } from '../core/plan.js';
import { LabPaths } from '../edges/paths.js';
import { NodeStatus, Provider, ProviderContext } from '../providers/provider.js';
import { listLabs } from '../edges/state.js';
import { CliContext } from './context.js';
import { formatUpstreamStatus, upstreamStatus } from '../upstream/session.js';
import { openLab } from '../providers/lab.js';
import { loadProcessRecords } from '../edges/state.js';
import { ReplicaProtocolStatus, describeReplicaStatus, replicaStatusFromLog } from '../core/replicaStatus.js';
import { logTail } from '../lab/replicas.js';

export interface ReplicaStatusRow {
  node: string;
  pid?: number;
  alive?: boolean;
  incarnation: number;
  /** normal in view V / view change to V / recovering (why) / dead / not started. */
  status: string;
  log?: ReplicaProtocolStatus;
}

/** Each replica's protocol status from its log (`start`'s processes; none when `start` did not run). */
export async function replicaStatuses(plan: Plan, paths: LabPaths, provider: Provider, pctx: ProviderContext): Promise<ReplicaStatusRow[]> {
  const lab = openLab(provider, plan, pctx);
  const recs = loadProcessRecords(paths).filter((r) => r.name === 'replica');
  if (!recs.length) return [];
  const out: ReplicaStatusRow[] = [];
  for (const n of replicas(plan)) {
    const rec = recs.find((r) => r.node === n.name);
    if (!rec) {
      out.push({ node: n.name, incarnation: 0, status: describeReplicaStatus({ state: 'starting' }, undefined) });
      continue;
    }
    const node = lab.node(n);
    const alive = await node.alive(rec).catch(() => false);
    const log = replicaStatusFromLog(await logTail(node, rec));
    out.push({ node: n.name, pid: rec.pid, alive, incarnation: rec.incarnation ?? 0, status: describeReplicaStatus(log, alive), log });
  }
  return out;
}

export function formatReplicaStatuses(rows: ReplicaStatusRow[]): string[] {
  if (!rows.length) return [];
  return ['replicas:', ...rows.map((r) => `  ${r.node}: ${r.status}${r.pid !== undefined ? ` (pid ${r.pid}${r.incarnation ? `, restart ${r.incarnation}` : ''})` : ''}`)];
}

export function formatStatusTable(rows: NodeStatus[]): string {
  const head = ['NODE', 'STATE', 'IP', 'PORT', 'MAC', 'PROCESSES', 'EBPF'];
  const body = rows.map((r) => [
    r.node,
    r.state,
    r.ip,
    String(r.port),
    r.mac,
    r.processes.map((p) => `${p.name}:${p.pid}${p.alive ? '' : '(dead)'}`).join(',') || '-',
    r.bpf.join(', ') || '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cols: string[]) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const notes = rows.filter((r) => r.detail).map((r) => `${r.node}: ${r.detail}`);
  return [line(head), ...body.map(line), ...notes].join('\n');
}

export interface FastPathStatus {
  node: string;
  /** Switched on now (el_config.enabled, read live). */
  enabled: string;
  /** Accepted by this kernel's verifier at attach. */
  loaded: string;
  rejected: { object: string; meaning: string }[];
}

/** Per replica, what the fast paths do now: live from the pins, with the reasons attach recorded. */
export async function fastPathStatus(plan: Plan, paths: LabPaths, provider: Provider, pctx: ProviderContext): Promise<FastPathStatus[]> {
  const saved = savedAttach(paths);
  if (!saved) return [];
  const out: FastPathStatus[] = [];
  for (const n of replicas(plan)) {
    const rec = saved.find((r) => r.node === n.name);
    let enabled = rec?.enabled ?? '?';
    let loaded = rec?.loaded ?? '?';
    try {
      const live = await bpfState(openLab(provider, plan, pctx), n);
      if (live.config) {
        enabled = live.config.fast_paths;
        loaded = live.config.loaded_paths ?? loaded;
      }
    } catch {
      /* the node may be gone: show what attach recorded */
    }
    out.push({ node: n.name, enabled, loaded, rejected: (rec?.objects ?? []).filter((o) => !o.loaded).map((o) => ({ object: o.object, meaning: o.meaning ?? '?' })) });
  }
  return out;
}

export function formatFastPathStatus(rows: FastPathStatus[]): string[] {
  if (!rows.length) return [];
  return ['fast paths:', ...rows.flatMap((r) => [`  ${r.node}: on ${r.enabled}; loaded ${r.loaded}`, ...r.rejected.map((x) => `    ${x.object} rejected by this kernel's verifier: ${x.meaning}`)])];
}

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description("show a lab's nodes, addresses, MACs, processes, each replica's status (normal / view change / recovering / dead) and attached eBPF programs")
    .option('--json', 'machine-readable output (same data)')
    .option('--all', 'list every lab in the state folder instead')
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab status                  the lab named 'lab'
  $ electrode-lab status --name demo --json
  $ electrode-lab status --all            every lab with saved state`,
    )
    .action(async (opts: { json?: boolean; all?: boolean }) => {
      if (opts.all) {
        const labs = listLabs(ctx.home());
        if (opts.json) ctx.out(JSON.stringify(labs, null, 2));
        else ctx.out(labs.length ? labs.map((l) => `${l.name}  ${l.provider}  ${l.subnet}  ${l.phase}`).join('\n') : 'no labs');
        return;
      }
      const { plan, paths, state, provider } = ctx.loadLab();
      const pctx = ctx.providerContext(paths);
      const nodes = await provider.status(plan, pctx);
      const fastPaths = await fastPathStatus(plan, paths, provider, pctx);
      const upstream = await upstreamStatus(openLab(provider, plan, pctx));
      const replicaStatus = await replicaStatuses(plan, paths, provider, pctx);
      if (opts.json) {
        ctx.out(
          JSON.stringify(
            {
              lab: plan.lab,
              provider: plan.provider,
              phase: state?.phase ?? 'unknown',
              stateDir: paths.root,
              cluster: plan.cluster,
              network: { cidr: plan.network.cidr, mtu: plan.network.mtu, basePort: plan.network.basePort },
              nodes,
              fastPaths,
              replicas: replicaStatus.map(({ log: _log, ...r }) => r),
              ...(upstream ? { upstream } : {}),
            },
            null,
            2,
          ),
        );
        return;
      }
      ctx.out(`lab '${plan.lab}' (${plan.provider}, ${state?.phase ?? 'unknown'}): n=${plan.cluster.n} f=${plan.cluster.f} subnet ${plan.network.cidr} mtu ${plan.network.mtu}`);
      ctx.out([formatStatusTable(nodes), ...formatReplicaStatuses(replicaStatus), ...formatFastPathStatus(fastPaths), ...(upstream ? formatUpstreamStatus(upstream) : [])].join('\n'));
    });
}
