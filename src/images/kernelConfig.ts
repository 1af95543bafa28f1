/**
 * A kernel's config, before booting it: which of the features the fast paths
 * and the check need it has (built in, as a module the guest can load, or
 * not at all), and where its config file may be. Pure.
 */
import { basename, dirname, join } from 'node:path';
import { Diagnostic } from '../core/diagnostics.js';

/** Modules the check needs when the kernel has them as modules (built-in is fine too). */
export const GUEST_MODULES = ['kernel/drivers/net/veth.ko', 'kernel/net/sched/sch_ingress.ko', 'kernel/net/sched/cls_bpf.ko'];

/** `CONFIG_X=y|m|value` lines; `# CONFIG_X is not set` counts as absent. */
export function parseKernelConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

export interface KernelFeature {
  option: string;
  what: string;
  /** A loadable module can provide it (the path under the modules folder). */
  module?: string;
  /** Absent = the check cannot run (true), or only a note (false). */
  required: boolean;
  note?: string;
}

export const KERNEL_FEATURES: KernelFeature[] = [
  { option: 'CONFIG_BPF_SYSCALL', what: 'the bpf() system call', required: true },
  { option: 'CONFIG_BLK_DEV_INITRD', what: 'an initramfs (the check boots one)', required: true },
  { option: 'CONFIG_RD_GZIP', what: 'gzip-compressed initramfs', required: true },
  { option: 'CONFIG_SERIAL_8250_CONSOLE', what: 'a console on ttyS0 (the check reports there)', required: true },
  { option: 'CONFIG_VETH', what: 'veth (the check attaches on a veth pair)', module: GUEST_MODULES[0]!, required: true },
  { option: 'CONFIG_NET_SCH_INGRESS', what: 'the clsact qdisc (TC egress hook)', module: GUEST_MODULES[1]!, required: true },
  { option: 'CONFIG_NET_CLS_BPF', what: 'the TC BPF classifier (cls_bpf)', module: GUEST_MODULES[2]!, required: true },
  { option: 'CONFIG_BPF_JIT', what: 'the BPF JIT', required: false, note: 'programs run interpreted: slower, same verdicts' },
  { option: 'CONFIG_DEBUG_INFO_BTF', what: 'kernel BTF', required: false, note: 'fine: our objects use no CO-RE and inline every helper' },
];

export interface ConfigCheck {
  /** Where the config came from, or undefined when none was found. */
  source?: string;
  missing: Diagnostic[];
  notes: string[];
}

/** Which features the kernel lacks, from its config (pure; `hasModule` says whether a .ko exists). */
export function checkKernelFeatures(release: string, config: Map<string, string> | undefined, source: string | undefined, hasModule: (m: string) => boolean): ConfigCheck {
  const missing: Diagnostic[] = [];
  const notes: string[] = [];
  const [maj, min] = release.split(/[.-]/).map(Number);
  if (maj !== undefined && min !== undefined && (maj < 5 || (maj === 5 && min < 8))) {
    notes.push(`Linux ${release} has no BPF ring buffer (5.8+): the fast reply cannot load there; the other fast paths can`);
  }
  if (!config) {
    notes.push('no config found for this kernel (pass --config FILE, or put config-<name> next to the image): features are only checked by booting it');
    return { missing, notes };
  }
  for (const f of KERNEL_FEATURES) {
    const v = config.get(f.option);
    if (v === 'y') continue;
    if (v === 'm' && f.module) {
      if (hasModule(f.module)) continue;
      missing.push({ code: 'KERNEL_MODULE_MISSING', subject: f.option, message: `${f.what} is a module, but ${basename(f.module)} is not in the modules folder`, hint: 'pass that kernel\'s modules folder with --modules DIR' });
      continue;
    }
    if (f.required) missing.push({ code: 'KERNEL_FEATURE_MISSING', subject: f.option, message: `${source} lacks ${f.what}`, hint: `rebuild the kernel with ${f.option}=y${f.module ? ' (or =m with --modules)' : ''}` });
    else notes.push(`no ${f.what} (${f.option}): ${f.note}`);
  }
  return { source, missing, notes };
}

/** Config candidates for an image: the given one, config-<name> beside it, /boot/config-<release>. */
export function configCandidates(kernel: string, release: string, given?: string): string[] {
  if (given) return [given];
  const name = basename(kernel).replace(/^vmlinuz-?/, '');
  return [...(name ? [join(dirname(kernel), `config-${name}`)] : []), join(dirname(kernel), `config-${release}`), `/boot/config-${release}`];
}
