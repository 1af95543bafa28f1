/**
 * The command registry: a command module exports `register(program, ctx)`;
 * add it to `commands` below. What commands get is in context.ts.
 */
import { Command } from 'commander';
import { CliContext } from './context.js';
import { registerUp } from './up.js';
import { registerDown } from './down.js';
import { registerStatus } from './status.js';
import { registerExec } from './exec.js';
import { registerRender } from './render.js';
import { registerBpf } from './bpf.js';
import { registerBox, registerSsh } from './box.js';
import { registerBench } from './bench.js';
import { registerCluster } from './cluster.js';
import { registerRestart } from './restart.js';
import { registerCheck } from './check.js';
import { registerLab } from './lab.js';
import { registerUpstream } from './upstream.js';
import { registerKernel } from './kernel.js';

export { makeContext } from './context.js';
export type { CliContext, GlobalOptions, LoadedLab } from './context.js';

export type RegisterCommand = (program: Command, ctx: CliContext) => void;

/** Every command of the CLI, in help order. Other modules add theirs here. */
export const commands: RegisterCommand[] = [registerUp, registerDown, registerStatus, registerExec, registerRender, registerBpf, registerCluster, registerRestart, registerBench, registerCheck, registerBox, registerKernel, registerSsh, registerLab, registerUpstream];

