/** `electrode-lab render [replicas]`: print the plan and every file derived from it; touch nothing. */
import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { renderCloudlabProfile } from '../providers/hosts/cloudlab.js';
import { NO_FACTS } from '../core/plan.js';
import { peerTable, planJson, replicaConfig } from '../core/render.js';
import { renderVagrantfile } from '../providers/vagrantfile.js';
import { CliContext } from './context.js';
import { addSpecOptions, planFromOptions, SpecOptions } from './specFlags.js';

export function registerRender(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('render')
    .description('print the plan, replica config, peer table and Vagrantfile for a spec; changes nothing')
    .option('--json', 'print only the plan JSON')
    .option('--cloudlab [file]', 'with --provider hosts: the CloudLab profile (geni-lib profile.py: the replicas and clients as raw PCs on one LAN), printed or written to file')
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab render 7                       the 7-replica plan and files
  $ electrode-lab render --lab labs/five.yaml
  $ electrode-lab render 5 --provider vagrant --cpus 4 --json
  $ electrode-lab render 5 --provider hosts --cloudlab profile.py   a CloudLab profile for 5 replicas + 1 client

render does not probe the host: without --provider it plans for netns, and it
never checks for labs that are up.`,
    );
  addSpecOptions(cmd).action(async (replicas: number | undefined, opts: SpecOptions & { json?: boolean; cloudlab?: string | boolean }) => {
    if (opts.cloudlab !== undefined) {
      // a profile asks for machines that do not exist yet: no inventory needed
      const profile = renderCloudlabProfile({ replicas: replicas ?? 3, clients: opts.clients ?? 1 });
      if (typeof opts.cloudlab === 'string') {
        writeFileSync(opts.cloudlab, profile);
        ctx.out(`wrote ${opts.cloudlab}: paste it into a new CloudLab profile (Edit Code), instantiate it, then save the experiment's manifest and run \`electrode-lab up ${replicas ?? 3} --cloudlab-manifest manifest.xml --ssh-user <you> --ssh-key <key>\``);
      } else ctx.out(profile.trimEnd());
      return;
    }
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
