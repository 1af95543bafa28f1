/**
 * One object owns every path of a lab, one every path of a run. Getters are
 * pure; only the `ensure...` functions create folders.
 */
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (works from src/ under vitest and from dist/src/ when built). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (dir.endsWith('/src')) {
      const up = dirname(dir);
      return up.endsWith('/dist') ? dirname(up) : up;
    }
    dir = dirname(dir);
  }
  throw new Error('cannot locate the electrode-lab project root');
}

/** Where lab state lives: $ELECTRODE_LAB_HOME, else ~/.local/state/electrode-lab. */
export function labHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ELECTRODE_LAB_HOME) return resolve(env.ELECTRODE_LAB_HOME);
  const state = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'electrode-lab');
}

/** Where bench runs are stored: $ELECTRODE_LAB_RUNS, else ./runs. */
export function runsHome(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return resolve(cwd, env.ELECTRODE_LAB_RUNS || 'runs');
}

export class LabPaths {
  constructor(readonly home: string, readonly lab: string) {}
  static labsDir(home: string): string {
    return join(home, 'labs');
  }
  get root(): string {
    return join(LabPaths.labsDir(this.home), this.lab);
  }
  /** The saved plan: `status`, `exec`, `bench` and `down` read it instead of re-planning. */
  get planFile(): string {
    return join(this.root, 'plan.json');
  }
  /** Provider state: what was created, so `down` can undo it even after a crash. */
  get stateFile(): string {
    return join(this.root, 'state.json');
  }
  get filesDir(): string {
    return join(this.root, 'files');
  }
  get replicaConfigFile(): string {
    return join(this.filesDir, 'replica.config');
  }
  get peerTableFile(): string {
    return join(this.filesDir, 'peers.table');
  }
  get vagrantDir(): string {
    return join(this.root, 'vagrant');
  }
  get logsDir(): string {
    return join(this.root, 'logs');
  }
  /** What the last `attach` loaded per replica, and why a kernel refused an object (status shows it). */
  get bpfAttachFile(): string {
    return join(this.root, 'bpf-attach.json');
  }
  nodeLogDir(node: string): string {
    return join(this.logsDir, node);
  }
  processLog(node: string, proc: string): string {
    return join(this.nodeLogDir(node), `${proc}.log`);
  }
  get pidsDir(): string {
    return join(this.root, 'pids');
  }
  /** JSON {pid, argv, startTime} of a process the lab started. */
  pidFile(node: string, proc: string): string {
    return join(this.pidsDir, `${node}.${proc}.json`);
  }
  ensureDirs(nodes: string[] = []): void {
    for (const d of [this.root, this.filesDir, this.logsDir, this.pidsDir, ...nodes.map((n) => this.nodeLogDir(n))]) {
      mkdirSync(d, { recursive: true });
    }
  }
}

export class RunPaths {
  constructor(readonly runsDir: string, readonly id: string) {}
  get root(): string {
    return join(this.runsDir, this.id);
  }
  get specFile(): string {
    return join(this.root, 'spec.json');
  }
  get planFile(): string {
    return join(this.root, 'plan.json');
  }
  get commandsLog(): string {
    return join(this.root, 'commands.log');
  }
  get resultsJson(): string {
    return join(this.root, 'results.json');
  }
  get resultsCsv(): string {
    return join(this.root, 'results.csv');
  }
  get environmentJson(): string {
    return join(this.root, 'environment.json');
  }
  get chartSvg(): string {
    return join(this.root, 'chart.svg');
  }
  get crashesDir(): string {
    return join(this.root, 'crashes');
  }
  crashDir(node: string, pid: number): string {
    return join(this.crashesDir, `${node}-${pid}`);
  }
  get coresDir(): string {
    return join(this.root, 'cores');
  }
  nodeDir(node: string): string {
    return join(this.root, 'nodes', node);
  }
  ensureDirs(): void {
    for (const d of [this.root, this.crashesDir, this.coresDir]) mkdirSync(d, { recursive: true });
  }
}
