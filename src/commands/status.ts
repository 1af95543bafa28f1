/** `electrode-lab status [--json]`: nodes, addresses, MACs, processes, attached eBPF. */
import { Command } from 'commander';
import { NodeStatus } from '../providers/provider.js';
import { listLabs } from '../state.js';
import { CliContext } from './index.js';

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

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description("show a lab's nodes, addresses, MACs, processes and attached eBPF programs")
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
      const nodes = await provider.status(plan, ctx.providerContext(paths));
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
            },
            null,
            2,
          ),
        );
        return;
      }
      ctx.out(`lab '${plan.lab}' (${plan.provider}, ${state?.phase ?? 'unknown'}): n=${plan.cluster.n} f=${plan.cluster.f} subnet ${plan.network.cidr} mtu ${plan.network.mtu}`);
      ctx.out(formatStatusTable(nodes));
    });
}
