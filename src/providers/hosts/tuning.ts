/**
 * The NIC and host tuning Electrode's measurements ran with (its README):
 *
 *   ifconfig <if> mtu 3000 up
 *   ethtool -C <if> adaptive-rx off adaptive-tx off rx-frames 1 rx-usecs 0 tx-frames 1 tx-usecs 0
 *   ethtool -L <if> combined 1
 *   service irqbalance stop
 *   for IRQ in /sys/class/net/<if>/device/msi_irqs/*: echo 0 > /proc/irq/$IRQ/smp_affinity_list
 *
 * as command plans WITH their undo, computed from what the machine reports
 * (pure: tool output in, argv lists out). `saved` goes into the lab state;
 * `tuningRestore(saved)` rebuilds the undo from it alone, so `down` needs no
 * new probe. Only what differs from the target is changed, so restore touches
 * only what apply did.
 *
 * Output formats handled (ethtool's own sources): the ioctl-era `ethtool -c`
 * (before 5.6; e.g. Ubuntu 20.04's 5.4) prints every parameter as a number,
 * 0 also for unsupported ones; the netlink one prints `n/a` for parameters the
 * driver does not support, `key: value` in 5.x and `key:\tvalue` later (and
 * `tx-aggr-time-usecs\tn/a`, without the colon). `ethtool -l` prints n/a
 * (netlink) or 0 (ioctl) for channel kinds a driver lacks.
 */
import { Diagnostic } from '../../diagnostics.js';
import { parseIpJson } from './facts.js';
import { Inventory, TuningSettings } from './inventory.js';

// ---------------------------------------------------------------- parsers

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

const sameCpus = (a: string, b: string) => expandCpuList(a).join(',') === expandCpuList(b).join(',');

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

// ---------------------------------------------------------------- plan

/** TuningSettings plus the lab MTU (`keep` = leave the NIC's). */
export interface TuningTarget extends TuningSettings {
  mtu: number | 'keep';
}

export function tuningTarget(inventory: Inventory): TuningTarget {
  return { ...inventory.tuning, mtu: inventory.mtu ?? 'keep' };
}

/** Raw tool output from one machine, as the provider's preflight collects it. */
export interface TuningFacts {
  ifname: string;
  /** `ip -j link show <if>`. */
  link: string;
  /** `ethtool -c <if>` stdout; undefined when it failed (the driver has no coalescing settings, e.g. veth). */
  coalesce?: string;
  /** `ethtool -l <if>` stdout; undefined when it failed. */
  channels?: string;
  /** Exit code of `pgrep -x irqbalance`. */
  irqbalanceExit: number;
  /** /proc/interrupts. */
  interrupts: string;
  /** `ethtool -i <if>` bus-info, e.g. 0000:03:00.1. */
  busInfo?: string;
  /** `msiIrqsArgv(if)` stdout; undefined when the device has none listed. */
  msiIrqs?: string;
  /** `readAffinityArgv(irqs)` stdout for the NIC's IRQs (`nicIrqs`). */
  affinity?: string;
}

/** What apply changed, from what to what: enough to undo it later without probing again. */
export interface SavedTuning {
  schema: 1;
  ifname: string;
  mtu?: { from: number; to: number };
  /** ethtool -C argument -> value. */
  coalesce?: { from: Record<string, string>; to: Record<string, string> };
  /** ethtool -L argument (rx, tx, combined) -> count. */
  channels?: { from: Record<string, number>; to: Record<string, number> };
  /** Present when apply stops irqbalance (it was running). */
  irqbalance?: { stopped: true };
  irqAffinity?: { irq: number; from: string; to: string }[];
}

export interface TuningPlan {
  apply: string[][];
  restore: string[][];
  saved: SavedTuning;
  /** What was left alone and why, for the log. */
  notes: string[];
  diagnostics: Diagnostic[];
}

/** Electrode's coalescing: interrupt per packet, no adaptive moderation. In ethtool's argument order. */
export const COALESCE_OFF: readonly (readonly [string, string])[] = [
  ['adaptive-rx', 'off'],
  ['adaptive-tx', 'off'],
  ['rx-usecs', '0'],
  ['rx-frames', '1'],
  ['tx-usecs', '0'],
  ['tx-frames', '1'],
];

const IRQBALANCE_UNIT = 'irqbalance.service';
const CHANNEL_ORDER = ['combined', 'rx', 'tx'] as const;

const pairs = <T extends string | number>(o: Record<string, T>, order: readonly string[]) =>
  order.filter((k) => k in o).flatMap((k) => [k, String(o[k])]);

const mtuArgv = (ifname: string, mtu: number) => ['ip', 'link', 'set', 'dev', ifname, 'mtu', String(mtu)];
const coalesceArgv = (ifname: string, v: Record<string, string>) => ['ethtool', '-C', ifname, ...pairs(v, COALESCE_OFF.map(([k]) => k))];
const channelsArgv = (ifname: string, v: Record<string, number>) => ['ethtool', '-L', ifname, ...pairs(v, CHANNEL_ORDER)];
const affinityArgv = (irq: number, cpus: string) => ['sh', '-c', `echo ${cpus} > /proc/irq/${irq}/smp_affinity_list`];

function applyArgv(s: SavedTuning): string[][] {
  const out: string[][] = [];
  if (s.mtu) out.push(mtuArgv(s.ifname, s.mtu.to));
  if (s.coalesce) out.push(coalesceArgv(s.ifname, s.coalesce.to));
  if (s.channels) out.push(channelsArgv(s.ifname, s.channels.to));
  // irqbalance goes before the affinity writes, or it moves the IRQs again
  if (s.irqbalance) out.push(['systemctl', 'stop', IRQBALANCE_UNIT]);
  for (const a of s.irqAffinity ?? []) out.push(affinityArgv(a.irq, a.to));
  return out;
}

/** The undo of a plan, from its saved record alone (reverse order of apply). */
export function tuningRestore(saved: SavedTuning): string[][] {
  const out: string[][] = [];
  for (const a of [...(saved.irqAffinity ?? [])].reverse()) out.push(affinityArgv(a.irq, a.from));
  if (saved.irqbalance) out.push(['systemctl', 'start', IRQBALANCE_UNIT]);
  if (saved.channels) out.push(channelsArgv(saved.ifname, saved.channels.from));
  if (saved.coalesce) out.push(coalesceArgv(saved.ifname, saved.coalesce.from));
  if (saved.mtu) out.push(mtuArgv(saved.ifname, saved.mtu.from));
  return out;
}

/**
 * Target settings + one machine's facts -> the commands that tune its lab
 * NIC, the commands that undo exactly that, and the record to save. Collects
 * all problems; when there are any, apply and restore are empty.
 */
export function planTuning(target: TuningTarget, facts: TuningFacts): TuningPlan {
  const d: Diagnostic[] = [];
  const notes: string[] = [];
  const ifname = facts.ifname;
  const saved: SavedTuning = { schema: 1, ifname };
  const subject = (what: string) => `${ifname}: ${what}`;

  // MTU
  if (target.mtu !== 'keep') {
    let mtu: number | undefined;
    try {
      mtu = parseIpJson(facts.link).find((l) => l.ifname === ifname)?.mtu;
    } catch {
      /* reported below */
    }
    if (mtu === undefined) d.push({ code: 'TUNE_NO_LINK', subject: subject('mtu'), message: `\`ip -j link show ${ifname}\` did not give its MTU`, hint: 'check the interface exists on the machine' });
    else if (mtu === target.mtu) notes.push(`mtu: already ${mtu}`);
    else saved.mtu = { from: mtu, to: target.mtu };
  }

  // interrupt coalescing
  if (target.coalescing === 'off') {
    if (facts.coalesce === undefined) {
      notes.push(`coalescing: ${ifname} has no coalescing settings (ethtool -c failed): no -C command`);
    } else {
      const c = parseEthtoolCoalesce(facts.coalesce);
      const from: Record<string, string> = {};
      const to: Record<string, string> = {};
      const unsupported: string[] = [];
      const unknown: string[] = [];
      for (const [k, want] of COALESCE_OFF) {
        const cur = c.params[k];
        if (cur === undefined || cur === null) {
          unsupported.push(k);
          continue;
        }
        if (cur === want) continue;
        // ioctl-era output shows 0 for unsupported parameters: setting 0/off is always accepted,
        // a non-zero target only where the NIC shows a non-zero value now
        if (!c.supportKnown && want !== '0' && want !== 'off' && (cur === '0' || cur === 'off')) {
          unknown.push(k);
          continue;
        }
        from[k] = cur;
        to[k] = want;
      }
      if (unsupported.length) notes.push(`coalescing: ${unsupported.join(', ')} not supported by the driver (n/a): left alone`);
      if (unknown.length) notes.push(`coalescing: ${unknown.join(', ')} left at 0: this ethtool's output cannot tell whether the driver supports them`);
      if (Object.keys(to).length) saved.coalesce = { from, to };
      else if (unsupported.length + unknown.length < COALESCE_OFF.length) notes.push('coalescing: already off');
    }
  }

  // queues (channels)
  if (target.queues !== 'keep') {
    const q = target.queues;
    if (facts.channels === undefined) {
      notes.push(`queues: ${ifname} does not report channels (ethtool -l failed): left alone`);
    } else {
      const { max, current } = parseEthtoolChannels(facts.channels);
      let to: Record<string, number> | undefined;
      if (max.combined) {
        if (q > max.combined) d.push({ code: 'TUNE_QUEUES_MAX', subject: subject(`queues=${q}`), message: `the NIC has at most ${max.combined} combined channels`, hint: `use tuning.queues ${max.combined} or less` });
        else {
          to = { combined: q };
          // separate rx/tx channels next to combined ones would add queues
          if (max.rx && (current.rx ?? 0) > 0) to.rx = 0;
          if (max.tx && (current.tx ?? 0) > 0) to.tx = 0;
        }
      } else if (max.rx && max.tx) {
        if (q > Math.min(max.rx, max.tx)) d.push({ code: 'TUNE_QUEUES_MAX', subject: subject(`queues=${q}`), message: `the NIC has at most ${Math.min(max.rx, max.tx)} rx/tx channels`, hint: `use tuning.queues ${Math.min(max.rx, max.tx)} or less` });
        else to = { rx: q, tx: q };
      } else {
        notes.push(`queues: ${ifname} reports no combined or rx/tx channels: left alone`);
      }
      if (to) {
        const from: Record<string, number> = {};
        for (const k of Object.keys(to)) {
          const cur = current[k as keyof ChannelCounts] ?? 0;
          if (cur === to[k]) delete to[k];
          else from[k] = cur;
        }
        if (Object.keys(to).length) saved.channels = { from, to };
        else notes.push(`queues: already ${q}`);
      }
    }
  }

  // irqbalance
  const running = irqbalanceRunning(facts.irqbalanceExit);
  if (running === undefined) d.push({ code: 'TUNE_BAD_FACT', subject: subject('irqbalance'), message: `pgrep exited ${facts.irqbalanceExit}`, hint: 'pgrep -x irqbalance exits 0 when it runs, 1 when not' });
  else if (target.irqbalance === 'off') {
    if (running) saved.irqbalance = { stopped: true };
    else notes.push('irqbalance: not running');
  } else if (running && target.irqAffinity !== 'keep') {
    notes.push('irqbalance: keeps running and may move the pinned IRQs again (tuning.irqbalance: off stops it)');
  }

  // IRQ affinity
  if (target.irqAffinity !== 'keep') {
    const { cpus } = parseProcInterrupts(facts.interrupts);
    const msi = facts.msiIrqs !== undefined ? parseMsiIrqs(facts.msiIrqs) : undefined;
    const irqs = nicIrqs(facts.interrupts, { ifname, ...(facts.busInfo ? { busInfo: facts.busInfo } : {}), ...(msi?.length ? { msiIrqs: msi } : {}) });
    if (!cpus) d.push({ code: 'TUNE_BAD_FACT', subject: subject('/proc/interrupts'), message: 'no CPU header line', hint: 'pass the whole of /proc/interrupts' });
    else if (target.irqAffinity === 'pin' && target.irqCpu >= cpus) {
      d.push({ code: 'TUNE_IRQ_CPU', subject: subject(`irqCpu=${target.irqCpu}`), message: `the machine has CPUs 0-${cpus - 1}`, hint: 'use tuning.irqCpu 0 (Electrode)' });
    } else if (!irqs.length) {
      notes.push(`irq affinity: no IRQs of ${ifname} in /proc/interrupts (virtual NIC?): left alone`);
    } else {
      const current = parseAffinityDump(facts.affinity ?? '');
      const missing = irqs.filter((l) => current[l.irq] === undefined).map((l) => l.irq);
      if (missing.length) {
        d.push({ code: 'TUNE_NO_AFFINITY', subject: subject(`irq ${missing.join(',')}`), message: 'their current affinity was not read, so it could not be restored', hint: `read it with \`${readAffinityArgv(missing).join(' ')}\`` });
      } else {
        const changes: { irq: number; from: string; to: string }[] = [];
        irqs.forEach((l, k) => {
          const want = String(target.irqAffinity === 'pin' ? target.irqCpu : k % cpus);
          if (!sameCpus(current[l.irq]!, want)) changes.push({ irq: l.irq, from: current[l.irq]!, to: want });
        });
        if (changes.length) saved.irqAffinity = changes;
        else notes.push(`irq affinity: already ${target.irqAffinity === 'pin' ? `on CPU ${target.irqCpu}` : 'spread'}`);
      }
    }
  }

  if (d.length) return { apply: [], restore: [], saved: { schema: 1, ifname }, notes, diagnostics: d };
  return { apply: applyArgv(saved), restore: tuningRestore(saved), saved, notes, diagnostics: [] };
}
