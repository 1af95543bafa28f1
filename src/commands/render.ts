/** `electrode-lab render [replicas]`: print the plan and every file derived from it; touch nothing. */
import { Command } from 'commander';
import { NO_FACTS } from '../plan.js';
import { peerTable, planJson, replicaConfig } from '../render.js';
import { renderVagrantfile } from '../vagrantfile.js';
import { CliContext } from './context.js';
import { addSpecOptions, planFromOptions, SpecOptions } from './specFlags.js';

export function registerRender(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('render')
    .description('print the plan, replica config, peer table and Vagrantfile for a spec; changes nothing')
    .option('--json', 'print only the plan JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab render 7                       the 7-replica plan and files
  $ electrode-lab render --lab labs/five.yaml
  $ electrode-lab render 5 --provider vagrant --cpus 4 --json

render does not probe the host: without --provider it plans for netns, and it
never checks for labs that are up.`,
    );
  addSpecOptions(cmd).action(async (replicas: number | undefined, opts: SpecOptions & { json?: boolean }) => {
    const plan = planFromOptions(replicas, opts, ctx.globals().nameFlag, NO_FACTS);
    if (opts.json) {
      ctx.out(planJson(plan).trimEnd());
      return;
    }
    ctx.out('# ---- plan.json ----');
    ctx.out(planJson(plan).trimEnd());
    ctx.out('# ---- files/replica.config ----');
    ctx.out(replicaConfig(plan).trimEnd());
    ctx.out('# ---- files/peers.table ----');
    ctx.out(peerTable(plan).trimEnd());
    ctx.out('# ---- Vagrantfile ----');
    ctx.out(renderVagrantfile(plan).trimEnd());
  });
}
