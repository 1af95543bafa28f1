/** `electrode-lab exec <node> -- <command...>`: stdio passes through, the exit code comes back. */
import { Command } from 'commander';
import { LabError } from '../core/diagnostics.js';
import { findNode } from '../core/plan.js';
import { CliContext } from './context.js';

export function registerExec(program: Command, ctx: CliContext): void {
  program
    .command('exec')
    .description('run a command inside one node of the lab (stdio passes through; exit code is returned)')
    .argument('<node>', 'node name: replica0.., client0..')
    .argument('<command...>', 'the command and its arguments (put them after --)')
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab exec replica2 -- ip addr
  $ electrode-lab exec client0 -- ping -c 1 10.77.0.10
  $ electrode-lab exec replica0 --name demo -- bpftool net show`,
    )
    .action(async (nodeName: string, argv: string[]) => {
      const { plan, paths, provider } = ctx.loadLab();
      const node = findNode(plan, nodeName);
      if (!node) throw new LabError(`no node '${nodeName}' in lab '${plan.lab}'; nodes are ${plan.nodes.map((n) => n.name).join(', ')}`, 'NO_SUCH_NODE');
      const r = await provider.exec(plan, node, argv, ctx.providerContext(paths), { check: false, stdio: 'inherit' });
      if (r.exitCode === null && !r.signal && r.stderr) throw new LabError(r.stderr, 'EXEC_FAILED');
      ctx.setExitCode(r.exitCode ?? 128 + signalNumber(r.signal));
    });
}

function signalNumber(sig: string | null): number {
  const map: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };
  return (sig && map[sig]) || 1;
}
