/**
 * Flags that more than one command takes, declared once: the fast-path
 * switches (`start`, `attach`), where the fast paths hook in (`start`,
 * `attach`, `bench`), and the lab network of a lab a command creates (`up`,
 * `render`, `bench`). Each command keeps its own meaning in its help text.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { HOOK_CHOICES, XDP_MODES } from '../lab/bpf.js';
import { PROVIDER_NAMES } from '../core/spec.js';

export function parseWholeNumber(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError('must be a whole number.');
  return Number(value);
}

export function addFastPathOptions(cmd: Command): Command {
  return cmd
    .option('--broadcast', 'TC egress fan-out of Prepare/Commit on the leader')
    .option('--quorum', 'XDP PrepareOK pruning on the leader')
    .option('--reply', 'XDP fast PrepareOK on followers')
    .option('--all', 'all three fast paths');
}

/** --hook; `withXdpMode` where the command also has --xdp-mode (the bench has not: it attaches in auto mode). */
export function hookOption(withXdpMode = true): Option {
  const auto = withXdpMode ? "auto (tc on netns labs' veths, xdp on VMs; xdp when --xdp-mode native|generic is given)" : "auto (tc on netns labs' veths, xdp on VMs)";
  return new Option('--hook <hook>', `where quorum prune and fast reply run: ${auto}, xdp (the NIC's XDP hook), tc (TC ingress)`).choices([...HOOK_CHOICES]).default('auto');
}

export function xdpModeOption(): Option {
  return new Option('--xdp-mode <mode>', 'XDP attach mode for the fast paths: native, generic, or auto (native, falling back loudly); native/generic imply --hook xdp').choices([...XDP_MODES]).default('auto');
}

/** `--provider`, `--subnet`, `--base-port`, for the lab `whose` names (default: the lab `up` makes). */
export function addNetworkOptions(cmd: Command, o: { whose?: string; providerDefault?: string } = {}): Command {
  const of = o.whose ? ` of ${o.whose}` : '';
  return cmd
    .option('--provider <name>', `${PROVIDER_NAMES.join(' | ')}${of} (default: ${o.providerDefault ?? 'vagrant when vagrant-libvirt is installed, else netns'})`)
    .option('--subnet <cidr>', `lab IPv4 subnet${of} (default 10.77.0.0/24)`)
    .option('--base-port <port>', `UDP port of replica0${of}; replica i uses base+i, client j base+100+j (default 51000)`, parseWholeNumber);
}
