/** `electrode-lab down`: idempotent; also cleans up after crashes and partial state folders. */
import { Command } from 'commander';
import { join } from 'node:path';
import { runsHome } from '../edges/paths.js';
import { listRuns, readResults } from '../bench/store.js';
import { cleanupPlanOf, takeDown } from '../providers/teardown.js';
import { CliContext } from './context.js';

export function registerDown(program: Command, ctx: CliContext): void {
  program
    .command('down')
    .description('remove everything the lab created: processes, nodes, network, pins, state (idempotent)')
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab down                 take the lab named 'lab' down
  $ electrode-lab down --name demo     take lab 'demo' down
  $ electrode-lab --dry-run down       print what would be removed

Works after a crash, after processes were killed by hand and when the state
folder is partial: the netns provider also sweeps namespaces named el-<lab>-*.`,
    )
    .action(async () => {
      const g = ctx.globals();
      const paths = ctx.labPaths();
      const cleanup = cleanupPlanOf(g.name, paths);
      const plan = cleanup.plan;
      const progress = ctx.progress();
      let bench: string | undefined;
      if (!cleanup.saved) {
        bench = newestBenchRunOf(g.name, runsHome(ctx.env));
        progress.info(
          bench
            ? `lab '${g.name}' is not up: a bench (the last was run ${bench}) takes down the lab it created when it ends, unless \`bench --keep-lab\`; sweeping for leftovers anyway`
            : `lab '${g.name}' has no saved plan (it is not up); sweeping what the netns provider would have left behind`,
        );
      }
      const had = await takeDown(cleanup, ctx.getProvider(plan.provider), ctx.providerContext(paths));
      if (!g.dryRun) {
        ctx.out(had ? `lab '${plan.lab}' is down` : bench ? `lab '${plan.lab}' was already down (nothing was left): the last bench on it, run ${bench}, takes down a lab it created when it ends` : `lab '${plan.lab}' is down (nothing was left)`);
      }
    });
}

/** The newest bench run folder under runsDir that ran on lab `lab`, if any. */
function newestBenchRunOf(lab: string, runsDir: string): string | undefined {
  return listRuns(runsDir)
    .filter((id) => readResults(join(runsDir, id, 'results.json'))?.lab === lab)
    .at(-1);
}
