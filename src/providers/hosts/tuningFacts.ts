/**
 * What a machine reports about its lab NIC's tuning, parsed: `ethtool -c`
 * and `ethtool -l` (both the ioctl-era and the netlink output, see
 * tuning.ts), /proc/interrupts, the device's msi_irqs, IRQ affinities, CPU
 * lists, and which interrupt lines are the NIC's. Pure: tool output in,
 * values out.
 */
export interface EthtoolCoalesce {
  /** `ethtool -C` argument name -> current value (`on`/`off` or a number, as text); null = n/a, the driver does not support it. */
  params: Record<string, string | null>;
  /** false for the ioctl-era output, which prints 0 for unsupported parameters too. */
  supportKnown: boolean;
}

/** Output spellings that differ from the `ethtool -C` argument names. */
const COALESCE_ALIASES: Record<string, string> = {
  'rx-frame-low': 'rx-frames-low',
  'tx-frame-low': 'tx-frames-low',
  'rx-frame-high': 'rx-frames-high',
  'tx-frame-high': 'tx-frames-high',
};

export function parseEthtoolCoalesce(text: string): EthtoolCoalesce {
  const params: Record<string, string | null> = {};
  let sawNa = false;
  let sawNetlinkOnly = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const pair = /^(Adaptive|CQE mode) RX:\s*(\S+)\s+TX:\s*(\S+)$/.exec(line);
    if (pair) {
      const kind = pair[1] === 'Adaptive' ? 'adaptive' : 'cqe-mode';
      if (kind === 'cqe-mode') sawNetlinkOnly = true;
      for (const [dir, v] of [['rx', pair[2]!], ['tx', pair[3]!]] as const) {
        params[`${kind}-${dir}`] = v === 'n/a' ? null : v;
        if (v === 'n/a') sawNa = true;
      }
      continue;
    }
    const kv = /^([a-z][a-z0-9-]*):?\s+(\S+)$/.exec(line);
    if (!kv) continue;
    const key = COALESCE_ALIASES[kv[1]!] ?? kv[1]!;
    const v = kv[2]!;
    if (v === 'n/a') {
      params[key] = null;
      sawNa = true;
    } else if (/^\d+$/.test(v)) params[key] = v;
  }
  return { params, supportKnown: sawNa || sawNetlinkOnly };
}

export interface ChannelCounts {
  rx?: number;
  tx?: number;
  other?: number;
  combined?: number;
}

export interface EthtoolChannels {
  /** Kinds the driver lacks (n/a, or a maximum of 0) are absent. */
  max: ChannelCounts;
  current: ChannelCounts;
}

export function parseEthtoolChannels(text: string): EthtoolChannels {
  const max: ChannelCounts = {};
  const current: ChannelCounts = {};
  let section: ChannelCounts | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (/^Pre-set maximums:/i.test(line)) section = max;
    else if (/^Current hardware settings:/i.test(line)) section = current;
    else {
      const m = /^(RX|TX|Other|Combined):\s*(\S+)$/i.exec(line);
      if (m && section && /^\d+$/.test(m[2]!)) section[m[1]!.toLowerCase() as keyof ChannelCounts] = Number(m[2]);
    }
  }
  for (const k of ['rx', 'tx', 'other', 'combined'] as const) {
    if (!max[k]) {
      delete max[k];
      delete current[k];
    }
  }
  return { max, current };
}

export interface InterruptLine {
  irq: number;
  /** Per-CPU counts. */
  counts: number[];
  /** The irqchip column, e.g. `IR-PCI-MSI` or (newer kernels, per-device MSI domains) `PCI-MSIX-0000:00:03.0`. */
  chip: string;
  /** The action names (device handlers), e.g. `mlx5_comp0@pci:0000:03:00.1` or `i40e-eno1-TxRx-0`. */
  names: string[];
}

/** /proc/interrupts -> the CPU count (from the header) and the numbered IRQ lines. */
export function parseProcInterrupts(text: string): { cpus: number; lines: InterruptLine[] } {
  const all = text.split('\n');
  const header = all.find((l) => /^\s*CPU\d+/.test(l)) ?? '';
  const cpus = (header.match(/CPU\d+/g) ?? []).length;
  const lines: InterruptLine[] = [];
  for (const l of all) {
    const m = /^\s*(\d+):((?:\s+\d+)*)\s+(.*)$/.exec(l);
    if (!m) continue;
    const counts = m[2]!.trim() === '' ? [] : m[2]!.trim().split(/\s+/).map(Number);
    const rest = m[3]!;
    // "<chip> <hwirq>-edge|level|fasteoi  name[, name]"; names start after the trigger type
    const t = /\S*-(?:edge|level|fasteoi|simple)\s+(.*)$/i.exec(rest);
    const tail = (t ? t[1]! : (rest.split(/\s{2,}/).pop() ?? '')).trim();
    lines.push({ irq: Number(m[1]), counts, chip: rest.split(/\s+/)[0] ?? '', names: tail ? tail.split(/,\s*/) : [] });
  }
  return { cpus, lines };
}

/** `ls /sys/class/net/<if>/device/msi_irqs` -> IRQ numbers. */
export function parseMsiIrqs(text: string): number[] {
  return text
    .split(/\s+/)
    .filter((t) => /^\d+$/.test(t))
    .map(Number)
    .sort((a, b) => a - b);
}

export function msiIrqsArgv(ifname: string): string[] {
  return ['ls', `/sys/class/net/${ifname}/device/msi_irqs`];
}

/** Reads the IRQs' affinity in one command: `grep -H '' file...` prints `file:content`. */
export function readAffinityArgv(irqs: number[]): string[] {
  return ['grep', '-H', '', ...irqs.map((i) => `/proc/irq/${i}/smp_affinity_list`)];
}

/** Output of `readAffinityArgv` -> IRQ -> its smp_affinity_list. */
export function parseAffinityDump(text: string): Record<number, string> {
  const out: Record<number, string> = {};
  for (const l of text.split('\n')) {
    const m = /^\/proc\/irq\/(\d+)\/smp_affinity_list:(.*)$/.exec(l.trim());
    if (m && isCpuList(m[2]!.trim())) out[Number(m[1])] = m[2]!.trim();
  }
  return out;
}

/** `pgrep -x irqbalance` exit code -> running? (0 = a match, 1 = none; anything else is an error). */
export function irqbalanceRunning(pgrepExit: number): boolean | undefined {
  return pgrepExit === 0 ? true : pgrepExit === 1 ? false : undefined;
}

export function isCpuList(s: string): boolean {
  return /^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(s);
}

/** `0-3,8` -> [0,1,2,3,8]. */
export function expandCpuList(s: string): number[] {
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a!; c <= (b ?? a!); c++) out.add(c);
  }
  return [...out].sort((x, y) => x - y);
}

/** Two CPU lists naming the same CPUs (`0-1` and `0,1`). */
export const sameCpus = (a: string, b: string) => expandCpuList(a).join(',') === expandCpuList(b).join(',');

/**
 * The NIC's IRQs: those listed in its device's msi_irqs when known (what
 * Electrode's script used), else the /proc/interrupts lines whose names carry
 * the interface name (`eno1-TxRx-0`, `i40e-eno1-TxRx-0`) or its PCI address
 * (`mlx5_comp0@pci:0000:03:00.1`, from `ethtool -i` bus-info), or whose irqchip
 * column is the device's own MSI domain (`PCI-MSIX-0000:00:03.0`: virtio-net
 * names its vectors `virtio2-input.0`, with neither).
 */
export function nicIrqs(interrupts: string, nic: { ifname: string; busInfo?: string; msiIrqs?: number[] }): InterruptLine[] {
  const { lines } = parseProcInterrupts(interrupts);
  if (nic.msiIrqs) {
    const set = new Set(nic.msiIrqs);
    return lines.filter((l) => set.has(l.irq));
  }
  const esc = nic.ifname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const byName = new RegExp(`(^|[-_@:])${esc}($|[-_@:])`);
  const bus = nic.busInfo?.trim();
  return lines.filter(
    (l) => l.names.some((n) => byName.test(n) || (!!bus && (n.endsWith(`@pci:${bus}`) || n.endsWith(`@${bus}`)))) || (!!bus && l.chip.endsWith(`-${bus}`)),
  );
}
