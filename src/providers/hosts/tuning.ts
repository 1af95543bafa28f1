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
import { Diagnostic } from '../../core/diagnostics.js';
import { parseIpJson } from './facts.js';
import { Inventory, TuningSettings } from './inventory.js';
import { ChannelCounts, irqbalanceRunning, nicIrqs, parseAffinityDump, parseEthtoolChannels, parseEthtoolCoalesce, parseMsiIrqs, parseProcInterrupts, readAffinityArgv, sameCpus } from './tuningFacts.js';

export * from './tuningFacts.js';


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
