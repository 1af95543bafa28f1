#!/usr/bin/env node
/**
 * The electrode-lab CLI entry point: the ONLY place that calls process.exit.
 * Exit codes: 0 ok, 1 a command failed, 2 bad input (unknown option, bad
 * value, spec/plan/precondition diagnostics) with nothing changed.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { DiagnosticsError, LabError, formatDiagnostic } from './core/diagnostics.js';
import { projectRoot } from './edges/paths.js';
import { CommandError } from './edges/runner.js';
import { outputFlushed, writeErr, writeOut } from './edges/output.js';
import { commands, makeContext } from './commands/index.js';

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

export function buildProgram(env: NodeJS.ProcessEnv = process.env): { program: Command; ctx: ReturnType<typeof makeContext> } {
  const program = new Command();
  program
    .name('electrode-lab')
    .description('One-command, reproducible labs for Electrode (NSDI \'23): Multi-Paxos replicas with eBPF fast paths,\non network namespaces or Vagrant/libvirt VMs')
    .version(version())
    .option('--name <lab>', "lab name (default 'lab'); several labs can be up side by side")
    .option('--dry-run', 'print the commands instead of running them; change nothing')
    .showHelpAfterError('(run with --help for usage and examples)')
    .exitOverride()
    // help and usage errors in order with everything else, and out before process.exit
    .configureOutput({ writeOut, writeErr })
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab up 5 --provider netns      5 replicas + 1 client, on this host, in namespaces
  $ electrode-lab status                     nodes, addresses, MACs, processes, attached eBPF
  $ electrode-lab exec replica2 -- ip addr   run a command inside one node
  $ electrode-lab render 7                   print the plan, config file and Vagrantfile; touch nothing
  $ electrode-lab down                       remove everything the lab created, even after a crash

Environment: ELECTRODE_LAB_HOME (lab state), ELECTRODE_LAB_RUNS (bench runs),
ELECTRODE_LAB_KVM=1 (trust /dev/kvm), ELECTRODE_LAB_VM_TESTS=1 (opt-in VM tests).`,
    );
  const ctx = makeContext(program, env);
  for (const register of commands) register(program, ctx);
  // every subcommand: exit through our handler, suggest --help on usage errors
  for (const c of program.commands) c.exitOverride().showHelpAfterError('(run with --help for usage and examples)');
  return { program, ctx };
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const { program, ctx } = buildProgram();
  try {
    await program.parseAsync(argv);
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version "errors" are successes; commander already printed the message
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (e instanceof DiagnosticsError) {
      writeErr(`electrode-lab: ${e.phase} problems (nothing was changed):\n`);
      for (const d of e.diagnostics) writeErr(`  ${formatDiagnostic(d)}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof LabError || e instanceof CommandError) {
      writeErr(`electrode-lab: ${e.message}\n`);
      return EXIT_FAILED;
    }
    writeErr(`electrode-lab: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT_FAILED;
  }
}

function invokedAsScript(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedAsScript()) {
  // process.exit drops what a pipe has not taken yet: wait for it
  main().then(
    async (code) => {
      await outputFlushed();
      process.exit(code);
    },
    async (e) => {
      writeErr(`electrode-lab: ${String(e)}\n`);
      await outputFlushed();
      process.exit(EXIT_FAILED);
    },
  );
}
