/** `electrode-lab attach | detach | stats`: the eBPF fast paths on a lab's replicas. */
import { Command, Option } from 'commander';
import { DiagnosticsError } from '../diagnostics.js';
import { ALL_FAST_PATHS, FastPaths, XDP_MODES, XdpMode, attachFastPaths, detachFastPaths, fastPathNames, fastPathStats, formatStatsTable, setFastPaths } from '../bpf.js';
import { CliContext } from './index.js';

interface AttachOpts {
  broadcast?: boolean;
  quorum?: boolean;
  reply?: boolean;
  all?: boolean;
  xdpMode: XdpMode;
  set?: boolean;
}

/** --all or the chosen arms; none chosen = loaded but switched off (switch on later with --set). */
export function fastPathsFromOptions(o: Pick<AttachOpts, 'broadcast' | 'quorum' | 'reply' | 'all'>): FastPaths {
  if (o.all) {
    if (o.broadcast || o.quorum || o.reply) {
      throw new DiagnosticsError([{ code: 'BPF_FLAGS', subject: '--all', message: '--all already enables every fast path', hint: 'use --all alone, or list --broadcast/--quorum/--reply' }]);
    }
    return { ...ALL_FAST_PATHS };
  }
  return { broadcast: Boolean(o.broadcast), quorum: Boolean(o.quorum), reply: Boolean(o.reply) };
}

export function registerBpf(program: Command, ctx: CliContext): void {
  program
    .command('attach')
    .description("load the Electrode eBPF fast paths on every replica of a lab (XDP + TC egress), pinned under the node's pin folder")
    .option('--broadcast', 'TC egress fan-out of Prepare/Commit on the leader')
    .option('--quorum', 'XDP PrepareOK pruning on the leader')
    .option('--reply', 'XDP fast PrepareOK on followers')
    .option('--all', 'all three fast paths')
    .addOption(new Option('--xdp-mode <mode>', 'native, generic, or auto (native, falling back loudly)').choices([...XDP_MODES]).default('auto'))
    .option('--set', 'only switch fast paths on/off on an attached lab (no reload)')
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab attach --all                    every fast path, native XDP where possible
  $ electrode-lab attach --broadcast --name demo  only the TC broadcast, lab 'demo'
  $ electrode-lab attach --set --quorum           keep programs, switch to quorum prune only
  $ electrode-lab attach                          load everything, all fast paths switched off

Re-running attach replaces what an earlier (or crashed) run left behind. Start the
replicas with the matching --fast-broadcast/--fast-quorum/--fast-reply flags.`,
    )
    .action(async (o: AttachOpts) => {
      const fp = fastPathsFromOptions(o);
      const { plan, paths, provider } = ctx.loadLab();
      const pctx = ctx.providerContext(paths);
      if (o.set) {
        await pctx.progress.step(`switching fast paths to ${fastPathNames(fp)} on ${plan.cluster.n} replicas`, () => setFastPaths(plan, provider, pctx, fp));
        ctx.out(`fast paths now: ${fastPathNames(fp)}`);
        return;
      }
      const lines = await pctx.progress.step(`attaching fast paths (${fastPathNames(fp)}, xdp ${o.xdpMode}) on ${plan.cluster.n} replicas`, () =>
        attachFastPaths(plan, provider, pctx, fp, o.xdpMode),
      );
      ctx.out(lines.join('\n'));
      ctx.out(`next: electrode-lab stats${plan.lab === 'lab' ? '' : ` --name ${plan.lab}`} | electrode-lab status | electrode-lab detach`);
    });

  program
    .command('detach')
    .description('remove the eBPF fast paths from every replica and unpin them (idempotent)')
    .addHelpText('after', '\nExample:\n  $ electrode-lab detach --name demo')
    .action(async () => {
      const { plan, paths, provider } = ctx.loadLab();
      const pctx = ctx.providerContext(paths);
      await pctx.progress.step(`detaching fast paths from ${plan.cluster.n} replicas`, () => detachFastPaths(plan, provider, pctx));
      ctx.out(`fast paths detached, pins under ${plan.bpf.pinRoot} removed`);
    });

  program
    .command('stats')
    .description('eBPF fast-path counters (seen/passed/dropped/cloned/replied/errors) per replica')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  $ electrode-lab stats\n  $ electrode-lab stats --json --name demo')
    .action(async (o: { json?: boolean }) => {
      const { plan, paths, provider } = ctx.loadLab();
      const stats = await fastPathStats(plan, provider, ctx.providerContext(paths));
      ctx.out(o.json ? JSON.stringify({ lab: plan.lab, nodes: stats }, null, 2) : formatStatsTable(stats));
    });
}
