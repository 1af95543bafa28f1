/** Flags for every spec field, shared by `up` and `render` (flags win over --lab FILE). */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DiagnosticsError } from '../core/diagnostics.js';
import { addNetworkOptions, parseWholeNumber } from './sharedFlags.js';
import { Plan, planLab, HostFacts } from '../core/plan.js';
import { normalizeSpec, parseSpecText, SpecInput, ProviderName, VmDriver, VmSpec } from '../core/spec.js';

export { parseWholeNumber };

export interface SpecOptions {
  lab?: string;
  clients?: number;
  provider?: string;
  subnet?: string;
  basePort?: number;
  mtu?: number;
  maxClients?: number;
  cpus?: number;
  memory?: number;
  box?: string;
  kernel?: string;
  vmDriver?: string;
  build?: string;
  inventory?: string;
  cloudlabManifest?: string;
  sshUser?: string;
  sshKey?: string;
}

export function addSpecOptions(cmd: Command): Command {
  cmd
    .argument('[replicas]', 'number of replicas, 2f+1 between 3 and 15 (default 3)', parseWholeNumber)
    .option('--lab <file>', 'lab file (YAML or JSON) with spec fields; flags win over it')
    .option('--clients <n>', 'client nodes (default 1)', parseWholeNumber);
  return addNetworkOptions(cmd)
    .option('--mtu <bytes>', 'lab network MTU, at most 3500 for native XDP (default 1500)', parseWholeNumber)
    .option('--max-clients <n>', "client table size of every replica, in the replica config they all read (default 16384; a full table forgets the least recently heard client)", parseWholeNumber)
    .option('--cpus <n>', 'vCPUs per VM (vagrant; default 2)', parseWholeNumber)
    .option('--memory <MiB>', 'memory per VM (vagrant; default 1024)', parseWholeNumber)
    .option('--box <name>', 'vagrant base box (default electrode-lab/ubuntu2004-k58)')
    .option('--kernel <release>', "pinned guest kernel release, or 'box' (default: 5.8.0-050800-generic on the default box; with --box, the box's own kernel)")
    .option('--vm-driver <driver>', 'auto | kvm | qemu (default auto: qemu unless ELECTRODE_LAB_KVM=1)')
    .option('--build <where>', 'vagrant: guest = build native/ and bpf/ in each VM (default), host = copy host-built binaries (same-distro guests, e.g. debian12)')
    .option('--inventory <file>', 'hosts: the machines (YAML/JSON: ssh address, user, key, lab NIC per node); implies --provider hosts')
    .option('--cloudlab-manifest <file>', 'hosts: a CloudLab experiment manifest (RSpec XML) instead of an inventory; with --ssh-user and --ssh-key')
    .option('--ssh-user <user>', 'hosts with --cloudlab-manifest: your login on the machines')
    .option('--ssh-key <file>', 'hosts with --cloudlab-manifest: the private key for it');
}

/** Reads --lab FILE; unreadable files are a diagnostic, not a stack trace. */
export function readLabFile(file: string): SpecInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DiagnosticsError([{ code: 'SPEC_FILE', subject: `--lab ${file}`, message: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message, hint: 'give the path of a YAML or JSON lab file, e.g. labs/five.yaml' }]);
  }
  return parseSpecText(text, file);
}

/** [lab file, flags] inputs in precedence order; `name` is the --name flag when given. */
export function specInputs(replicas: number | undefined, opts: SpecOptions, name: string | undefined): SpecInput[] {
  const fromFile = opts.lab ? readLabFile(opts.lab) : {};
  const flags: SpecInput = {
    name,
    replicas,
    clients: opts.clients,
    provider: opts.provider as ProviderName | undefined,
    subnet: opts.subnet,
    basePort: opts.basePort,
    mtu: opts.mtu,
    maxClients: opts.maxClients,
    vm: { cpus: opts.cpus, memory: opts.memory, box: opts.box, kernel: opts.kernel, driver: opts.vmDriver as VmDriver | undefined, build: opts.build as VmSpec['build'] },
    hosts: { inventory: opts.inventory && resolve(opts.inventory), cloudlabManifest: opts.cloudlabManifest && resolve(opts.cloudlabManifest), user: opts.sshUser, key: opts.sshKey && resolve(opts.sshKey) },
  };
  return [fromFile, flags];
}

/** spec inputs + host facts -> plan, or DiagnosticsError with every problem of the failing phase. */
export function planFromOptions(replicas: number | undefined, opts: SpecOptions, name: string | undefined, facts: HostFacts): Plan {
  const { spec, diagnostics } = normalizeSpec(...specInputs(replicas, opts, name));
  if (!spec) throw new DiagnosticsError(diagnostics, 'spec');
  const r = planLab(spec, facts);
  if (!r.plan) throw new DiagnosticsError(r.diagnostics, 'plan');
  return r.plan;
}
