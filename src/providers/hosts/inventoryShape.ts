/**
 * The hosts inventory's shapes: what a file may say (input, types not
 * trusted) and what validation makes of it (defaults filled, every field
 * checked). Types and defaults only.
 */
import { NodeRole } from '../../core/plan.js';

/** `[user@]host[:port]` (like `ssh -J`) or a mapping. */
export type JumpHostInput = string | { host?: string; port?: number; user?: string };

export interface SshInput {
  host?: string;
  port?: number;
  user?: string;
  /** Path of a private key file (as written; `~` is expanded by the provider). */
  key?: string;
  jumpHost?: JumpHostInput;
}

export interface NicInput {
  name?: string;
  mac?: string;
}

export interface InventoryNodeInput {
  name?: string;
  role?: NodeRole;
  ssh?: SshInput;
  /** The lab NIC, by interface name and/or MAC (at least one). */
  nic?: NicInput;
  /** The lab IPv4 with prefix, when known in advance (else read from the machine). */
  ip?: string;
  /** Shorthand for nic.mac. */
  mac?: string;
}

export type Toggle = 'off' | 'keep';
export type IrqAffinityMode = 'pin' | 'spread' | 'keep';

export interface TuningInput {
  mtu?: number;
  coalescing?: Toggle;
  queues?: number | 'keep';
  irqbalance?: Toggle;
  irqAffinity?: IrqAffinityMode;
  /** The CPU `pin` moves the NIC's IRQs to (Electrode: 0, the replica ran on CPU 1). */
  irqCpu?: number;
}

/** An inventory file as written (before defaults and checks); types are not trusted. */
export interface InventoryInput {
  lab?: string;
  /** Alias of lab. */
  name?: string;
  port?: number;
  /** Alias of port. */
  basePort?: number;
  mtu?: number;
  /** How many of the nodes without a `role` are replicas (in file order); see `assignRoles`. */
  replicas?: number;
  /** Defaults for every node's ssh (not host). */
  ssh?: Omit<SshInput, 'host'>;
  /** Default lab NIC name for every node (e.g. all xl170s use ens1f1np1). */
  nic?: { name?: string };
  nodes?: InventoryNodeInput[];
  tuning?: TuningInput;
}

// ---------------------------------------------------------------- normalized shapes

export interface SshHop {
  host: string;
  port: number;
  user?: string;
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  key?: string;
  jumpHost?: SshHop;
}

export interface InventoryNode {
  /** `replica<i>` / `client<j>` unless the inventory names it. */
  name: string;
  role: NodeRole;
  /** Replica index (the replica's `-i`, the eBPF peer-table key) or client index, in file order within the role. */
  index: number;
  /** Position in the file's `nodes` list, for diagnostics (`nodes[2]`). */
  entry: number;
  ssh: SshTarget;
  nic: { name?: string; mac?: string };
  /** Stated lab IPv4 `a.b.c.d/len`. */
  ip?: string;
}

/** What to change on each machine, and the Electrode defaults. */
export interface TuningSettings {
  coalescing: Toggle;
  queues: number | 'keep';
  irqbalance: Toggle;
  irqAffinity: IrqAffinityMode;
  irqCpu: number;
}

export const DEFAULT_TUNING: TuningSettings = { coalescing: 'off', queues: 1, irqbalance: 'off', irqAffinity: 'pin', irqCpu: 0 };
export const DEFAULT_SSH_USER = 'root';
export const DEFAULT_SSH_PORT = 22;

export interface Inventory {
  lab: string;
  basePort: number;
  /** The lab MTU to set on every lab NIC; undefined = keep what the machines have (they must agree). */
  mtu?: number;
  /** Replicas in index order, then clients in index order. */
  nodes: InventoryNode[];
  tuning: TuningSettings;
  cluster: { n: number; f: number; quorum: number };
}
