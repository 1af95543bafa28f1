/**
 * `electrode-lab upstream start|stop` and the `up --electrode-tree` edge:
 * run the user's upstream Electrode tree on a lab that is up. The logic is
 * in src/upstream/; this is the edge.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DiagnosticsError, Diagnostic } from '../core/diagnostics.js';
import { Tool, missingTools } from '../edges/probe.js';
import { Plan } from '../core/plan.js';
import { PROVIDER_NAMES, PROVIDER_TRAITS } from '../providers/names.js';
import { scenarioFacts } from '../upstream/scenario.js';
import { readScenario, treeProblems } from '../upstream/tree.js';
import { StartOptions, startUpstream, stopUpstream } from '../upstream/session.js';
import { holdExplanation, holdingLab } from '../course/holdback.js';
import { UPSTREAM_ARMS, UpstreamArm, scenarioProblems } from '../upstream/variant.js';
import { CliContext, LoadedLab } from './context.js';
import { openLab } from '../providers/lab.js';

/** What building and running upstream takes here (its replica is C++ with protobuf and libevent; the eBPF side clang). */
export const UPSTREAM_TOOLS: Tool[] = [
  { cmd: 'g++', pkg: 'g++', why: "upstream's replica and client" },
  { cmd: 'protoc', pkg: 'protobuf-compiler', why: "upstream's messages (also libprotobuf-dev libevent-dev libssl-dev libunwind-dev)" },
  { cmd: 'pkg-config', pkg: 'pkg-config', why: "upstream's Makefile" },
  { cmd: 'clang', pkg: 'clang', why: "upstream's fast_kern.c" },
  { cmd: 'stdbuf', pkg: 'coreutils', why: "the loader's log" },
];

export interface UpstreamFlags {
  electrodeTree?: string;
  scenario?: string;
  upstreamArm?: UpstreamArm;
  upstreamSharedBpffs?: boolean;
}

function armArg(v: string): UpstreamArm {
  if (!(UPSTREAM_ARMS as readonly string[]).includes(v)) throw new InvalidArgumentError(`arms are ${UPSTREAM_ARMS.join(', ')}.`);
  return v as UpstreamArm;
}

/** The options `up` takes for upstream (checked before anything is created). */
export function addUpstreamOptions(cmd: Command): Command {
  return cmd
    .option('--electrode-tree <dir>', "run the user's upstream Electrode tree on the lab (netns): a copy per lab is patched with the plan's values and built; the tree itself is never changed")
    .option('--scenario <dir>', 'with --electrode-tree: a course scenario folder (docker-compose.yaml, config.txt, fast_user.c, fast_common.h, Dockerfile) run first AS IT IS, then with generated values')
    .addOption(new Option('--upstream-arm <arm>', `upstream fast paths (compile-time switches) of the generated run: ${UPSTREAM_ARMS.join(', ')} (default baseline; with --scenario the scenario's own)`).argParser(armArg))
    .option('--upstream-shared-bpffs', "reproduce the course project's mistake on purpose: every upstream node's /sys/fs/bpf is ONE bpffs (default: one per node)");
}

/** Problems with the upstream flags for this plan, all at once. */
export function upstreamFlagProblems(f: UpstreamFlags, plan: Plan): Diagnostic[] {
  const d: Diagnostic[] = [];
  const any = f.scenario !== undefined || f.upstreamArm !== undefined || f.upstreamSharedBpffs;
  if (any && !f.electrodeTree) d.push({ code: 'UPSTREAM_NO_TREE', subject: '--scenario/--upstream-*', message: 'these need --electrode-tree', hint: 'add --electrode-tree <your Electrode clone>, e.g. --electrode-tree ../shared/third_party/electrode-upstream' });
  if (!f.electrodeTree) return d;
  d.push(...missingTools(UPSTREAM_TOOLS));
  if (!PROVIDER_TRAITS[plan.provider].upstreamTrees) {
    const can = PROVIDER_NAMES.filter((p) => PROVIDER_TRAITS[p].upstreamTrees);
    d.push({ code: 'UPSTREAM_PROVIDER', subject: `--provider ${plan.provider}`, message: `upstream trees run on ${can.join(', ')} labs only (for now)`, hint: `add --provider ${can[0]}` });
  }
  for (const m of treeProblems(f.electrodeTree)) d.push({ code: 'UPSTREAM_TREE', subject: `--electrode-tree ${f.electrodeTree}`, message: m, hint: 'give the root of a clone of the Electrode repository (it has Makefile, vr/, bench/, xdp-handler/)' });
  if (f.scenario) {
    try {
      for (const m of scenarioProblems(plan, scenarioFacts(readScenario(f.scenario)))) d.push({ code: 'SCENARIO_SIZE', subject: `--scenario ${f.scenario}`, message: m, hint: 'the scenario\'s files are used as they are, so the lab must have their size' });
    } catch (e) {
      d.push({ code: 'SCENARIO_FILES', subject: `--scenario ${f.scenario}`, message: (e as Error).message, hint: 'give a folder like multi-paxos-poc/scenario7' });
    }
  }
  return d;
}

function startOptions(ctx: CliContext, f: UpstreamFlags, labName: string): StartOptions {
  const waitS = Number(ctx.env.ELECTRODE_LAB_CORE_WAIT_S ?? '0');
  // a course lab whose exercise is to explain the crash keeps the explanation until its check passes
  const holding = holdingLab(ctx.home(), labName);
  return {
    ...(holding ? { holdBack: { hold: (run, c) => holdExplanation(holding.def, holding.work, run, c) } } : {}),
    tree: f.electrodeTree!,
    ...(f.scenario ? { scenario: f.scenario } : {}),
    ...(f.upstreamArm ? { arm: f.upstreamArm } : {}),
    sharedBpffs: Boolean(f.upstreamSharedBpffs),
    env: ctx.env,
    progress: ctx.progress(),
    out: (l) => ctx.out(l),
    coreLockWaitMs: Number.isFinite(waitS) && waitS > 0 ? waitS * 1000 : 0,
  };
}

/** Runs the upstream part of `up` on a lab that is now up; exit 1 when its workload did not commit. */
export async function upUpstream(ctx: CliContext, lab: LoadedLab, f: UpstreamFlags): Promise<void> {
  const h = openLab(lab.provider, lab.plan, ctx.providerContext(lab.paths));
  const { run, records } = await startUpstream(h, startOptions(ctx, f, lab.plan.lab));
  const nameArg = lab.plan.lab === 'lab' ? '' : ` --name ${lab.plan.lab}`;
  ctx.out(`run folder: ${run.root} (electrode-lab crashes ${run.id})`);
  const last = records.at(-1);
  if (!last || last.status !== 'ok') {
    ctx.setExitCode(1);
    ctx.out(`upstream did not come up; the lab stays up: electrode-lab status${nameArg}, electrode-lab down${nameArg}`);
  } else {
    ctx.out(`next: electrode-lab status${nameArg} (each node's pins) | electrode-lab upstream stop${nameArg} | electrode-lab bench${nameArg} --impl ours,upstream`);
  }
}

export function registerUpstream(program: Command, ctx: CliContext): void {
  const up = program
    .command('upstream')
    .description("run the user's upstream Electrode tree on a lab that is up (netns): start, stop")
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab upstream start --tree ~/Electrode --arm all
  $ electrode-lab upstream start --tree ~/Multi-Paxos-PoC/Electrode --scenario ~/Multi-Paxos-PoC/scenario7
  $ electrode-lab upstream stop

The same as \`up --electrode-tree\` on a lab that is already up.`,
    );
  up.command('start')
    .description('copy, patch and build the tree for this lab, start its loaders and replicas in the nodes, commit a workload; they keep running')
    .requiredOption('--tree <dir>', 'the upstream Electrode tree (never changed)')
    .option('--scenario <dir>', 'a course scenario folder, run first as it is, then with generated values')
    .addOption(new Option('--arm <arm>', `fast paths: ${UPSTREAM_ARMS.join(', ')} (default baseline; with --scenario the scenario's own)`).argParser(armArg))
    .option('--shared-bpffs', 'every node\'s /sys/fs/bpf is ONE bpffs (the course project\'s mistake, on purpose)')
    .action(async (o: { tree: string; scenario?: string; arm?: UpstreamArm; sharedBpffs?: boolean }) => {
      const lab = ctx.loadLab();
      const flags: UpstreamFlags = { electrodeTree: o.tree, ...(o.scenario ? { scenario: o.scenario } : {}), ...(o.arm ? { upstreamArm: o.arm } : {}), ...(o.sharedBpffs ? { upstreamSharedBpffs: true } : {}) };
      const problems = upstreamFlagProblems(flags, lab.plan);
      if (problems.length) throw new DiagnosticsError(problems, 'input');
      await upUpstream(ctx, lab, flags);
    });
  up.command('stop')
    .description('stop the upstream replicas and loaders (loaders detach and unpin on SIGTERM) and remove the nodes\' mount namespaces')
    .action(async () => {
      const lab = ctx.loadLab();
      const lines = await stopUpstream(openLab(lab.provider, lab.plan, ctx.providerContext(lab.paths)));
      ctx.out(lines.length ? lines.join('\n') : 'no upstream processes were running');
    });
}
