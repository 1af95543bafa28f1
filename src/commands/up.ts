/** `electrode-lab up [replicas]`: spec -> probe -> plan -> preconditions -> save -> provider.up. */
import { Command } from 'commander';
import { DiagnosticsError, LabError } from '../core/diagnostics.js';
import { probeHostFacts } from '../edges/probe.js';
import { peerTable, replicaConfig } from '../core/render.js';
import { createLab, prepareLab } from '../providers/bringup.js';
import { CliContext } from './context.js';
import { addSpecOptions, planFromOptions, SpecOptions } from './specFlags.js';
import { UpstreamFlags, addUpstreamOptions, upUpstream, upstreamFlagProblems } from './upstream.js';

export function registerUp(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('up')
    .description('create a lab: plan it, check the host, build the network and save the lab state')
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab up 5 --provider netns          5 replicas + 1 client in network namespaces
  $ electrode-lab up 3 --name demo --mtu 3000    a second lab named 'demo' with jumbo-ish frames
  $ electrode-lab up --lab labs/seven.yaml       spec from a lab file (flags win over it)
  $ electrode-lab up 7 --provider vagrant        7 VMs with the pinned 5.8 kernel
  $ electrode-lab --dry-run up 3 --provider netns   print the commands, change nothing
  $ electrode-lab up 7 --provider netns --electrode-tree ~/Electrode --upstream-arm all
  $ electrode-lab up 7 --provider netns --electrode-tree ~/Multi-Paxos-PoC/Electrode --scenario ~/Multi-Paxos-PoC/scenario7

Without --provider, vagrant is used when vagrant and vagrant-libvirt are installed,
else netns; the choice and the reason are printed.`,
    );
  addUpstreamOptions(addSpecOptions(cmd)).action(async (replicas: number | undefined, opts: SpecOptions & UpstreamFlags) => {
    const g = ctx.globals();
    const progress = ctx.progress();
    const facts = probeHostFacts(ctx.home(), ctx.env);
    const planned = planFromOptions(replicas, opts, g.nameFlag, facts);
    const paths = ctx.labPaths(planned.lab);
    progress.info(`lab '${planned.lab}': ${planned.cluster.n} replicas (f=${planned.cluster.f}), ${planned.nodes.length - planned.cluster.n} client(s)${planned.spec.hosts ? ', addresses from the machines' : `, subnet ${planned.network.cidr}`}`);
    progress.info(`provider: ${planned.provider} (${planned.providerReason})`);
    const provider = ctx.getProvider(planned.provider);
    const pctx = ctx.providerContext(paths);
    const problems = [...(await provider.probe(pctx)), ...upstreamFlagProblems(opts, planned)];
    if (problems.length) throw new DiagnosticsError(problems, 'preconditions');
    // what the nodes need is brought first (a VM lab's box and daemons); machines that exist are
    // what they are: their addresses replace the invented ones
    const plan = await prepareLab(planned, provider, pctx);

    if (g.dryRun) {
      ctx.out(`[dry-run] would write ${paths.planFile}, ${paths.replicaConfigFile}, ${paths.peerTableFile}`);
      ctx.out(replicaConfig(plan).trimEnd());
      ctx.out(peerTable(plan).trimEnd());
      await provider.up(plan, pctx);
      if (opts.electrodeTree) ctx.out(`[dry-run] then copy ${opts.electrodeTree} into the lab, patch it with the plan's values, build it${opts.scenario ? `, run ${opts.scenario} as it is` : ''} and start upstream's loaders, replicas and client in the nodes`);
      return;
    }

    // Ctrl-C (or SIGTERM) while building: finish the running step, then take
    // the same teardown path as a failure instead of leaving half a lab
    const cancel = ctx.cancellation((sig) => progress.warn(`${sig}: stopping after the current step, then removing what was created`));
    const refuseIfInterrupted = () => {
      if (cancel.reason) throw new LabError(`interrupted by ${cancel.reason}`, 'INTERRUPTED');
    };
    const upCtx = {
      ...pctx,
      signal: cancel.signal,
      progress: {
        step: async <T>(title: string, fn: () => Promise<T>) => {
          refuseIfInterrupted();
          return pctx.progress.step(title, fn);
        },
        info: (l: string) => pctx.progress.info(l),
        warn: (l: string) => pctx.progress.warn(l),
      },
    };
    try {
      await createLab(plan, provider, pctx, { upCtx, afterUp: refuseIfInterrupted });
    } finally {
      cancel.dispose();
    }
    ctx.out(`lab '${plan.lab}' is up (${plan.provider}): ${plan.nodes.map((n) => `${n.name}=${n.ip}:${n.port}`).join(' ')}`);
    ctx.out(`state: ${paths.root}`);
    const nameArg = plan.lab === 'lab' ? '' : ` --name ${plan.lab}`;
    if (opts.electrodeTree) {
      // upstream Electrode on the lab (src/upstream/): the lab stays up whatever upstream does
      await upUpstream(ctx, { plan, paths, provider }, opts);
      return;
    }
    ctx.out(`next: electrode-lab status${nameArg} | electrode-lab exec${nameArg} replica0 -- ip addr | electrode-lab down${nameArg}`);
  });
}
