/**
 * hosts provider, tuning: parsers for ethtool / /proc output (captured and documented formats),
 * exact apply/restore argv for fixtures, restore undoing apply on a fake NIC that executes the
 * argv, and the argv run for real on a veth in a namespace of this test's own.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_TUNING, validateInventory } from '../../src/providers/hosts/inventory.js';
import {
  ChannelCounts,
  expandCpuList,
  irqbalanceRunning,
  msiIrqsArgv,
  nicIrqs,
  parseAffinityDump,
  parseEthtoolChannels,
  parseEthtoolCoalesce,
  parseMsiIrqs,
  parseProcInterrupts,
  planTuning,
  readAffinityArgv,
  TuningFacts,
  tuningRestore,
  TuningTarget,
  tuningTarget,
} from '../../src/providers/hosts/tuning.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'hosts', 'tuning');
const fx = (name: string) => readFileSync(join(FIX, name), 'utf8');

const ELECTRODE: TuningTarget = { ...DEFAULT_TUNING, mtu: 3000 };
const link = (ifname: string, mtu: number) => JSON.stringify([{ ifname, mtu, address: '1c:34:da:5e:0f:2a', operstate: 'UP' }]);
const affinity = (m: Record<number, string>) => Object.entries(m).map(([irq, cpus]) => `/proc/irq/${irq}/smp_affinity_list:${cpus}`).join('\n') + '\n';
const echo = (irq: number, cpus: string) => ['sh', '-c', `echo ${cpus} > /proc/irq/${irq}/smp_affinity_list`];

// ---------------------------------------------------------------- parsers

describe('parseEthtoolCoalesce', () => {
  it('ethtool 6.1 netlink (tabs, n/a, CQE line, tx-aggr-time-usecs without colon): mlx5', () => {
    const c = parseEthtoolCoalesce(fx('mlx5-ethtool-6.1-c.txt'));
    expect(c.supportKnown).toBe(true);
    expect(c.params).toMatchObject({
      'adaptive-rx': 'on',
      'adaptive-tx': 'on',
      'rx-usecs': '8',
      'rx-frames': '128',
      'tx-usecs': '16',
      'tx-frames': '32',
      'cqe-mode-rx': 'on',
      'cqe-mode-tx': 'off',
      'rx-usecs-irq': null,
      'rx-frames-low': null, // printed rx-frame-low, set as rx-frames-low
      'tx-aggr-time-usecs': null,
    });
    // 23 key: value lines + Adaptive RX/TX + CQE mode RX/TX
    expect(Object.keys(c.params)).toHaveLength(27);
  });
  it('ethtool 5.4 ioctl (every field a number): support unknown', () => {
    const c = parseEthtoolCoalesce(fx('mlx5-ethtool-5.4-ioctl-c.txt'));
    expect(c.supportKnown).toBe(false);
    expect(c.params).toMatchObject({ 'adaptive-rx': 'on', 'rx-usecs': '8', 'rx-frames': '128', 'tx-usecs': '16', 'tx-frames': '0', 'stats-block-usecs': '0' });
    expect(Object.values(c.params)).not.toContain(null);
  });
  it('5.x netlink `key: value`: i40e has no rx/tx-frames', () => {
    const c = parseEthtoolCoalesce(fx('i40e-ethtool-5.x-netlink-c.txt'));
    expect(c.supportKnown).toBe(true);
    expect(c.params).toMatchObject({ 'adaptive-rx': 'on', 'rx-usecs': '50', 'rx-frames': null, 'tx-frames': null, 'rx-frames-irq': '256', 'rx-usecs-high': '0' });
  });
  it('Adaptive RX/TX n/a (drivers without adaptive moderation)', () => {
    expect(parseEthtoolCoalesce('Coalesce parameters for eno1:\nAdaptive RX: n/a  TX: n/a\nrx-usecs:\t1\n').params).toEqual({ 'adaptive-rx': null, 'adaptive-tx': null, 'rx-usecs': '1' });
  });
});

describe('parseEthtoolChannels', () => {
  it('veth, real capture (netlink): rx/tx only', () => {
    expect(parseEthtoolChannels(fx('veth-ethtool-6.1-l.txt'))).toEqual({ max: { rx: 2, tx: 2 }, current: { rx: 1, tx: 1 } });
  });
  it('mlx5 netlink and ioctl (0 maximum = not there) read the same', () => {
    const want = { max: { combined: 4 }, current: { combined: 4 } };
    expect(parseEthtoolChannels(fx('mlx5-ethtool-6.1-l.txt'))).toEqual(want);
    expect(parseEthtoolChannels(fx('mlx5-ethtool-5.4-ioctl-l.txt'))).toEqual(want);
  });
  it('i40e: other + combined', () => {
    expect(parseEthtoolChannels(fx('i40e-ethtool-5.x-netlink-l.txt'))).toEqual({ max: { other: 1, combined: 40 }, current: { other: 1, combined: 4 } });
  });
});

describe('/proc/interrupts, msi_irqs and affinity', () => {
  it('real capture (virtio VM): CPU count, chip column, names', () => {
    const p = parseProcInterrupts(fx('virtio-vm-proc-interrupts.txt'));
    expect(p.cpus).toBe(2);
    expect(p.lines.find((l) => l.irq === 38)).toEqual({ irq: 38, counts: [0, 3952], chip: 'PCI-MSIX-0000:00:03.0', names: ['virtio2-input.0'] });
    expect(p.lines.every((l) => l.counts.length === 2)).toBe(true);
    expect(p.lines.map((l) => l.irq)).not.toContain(NaN);
  });
  it('shared IRQs list every action name', () => {
    expect(parseProcInterrupts(fx('mlx5-proc-interrupts.txt')).lines.find((l) => l.irq === 24)!.names).toEqual(['PCIe PME', 'pciehp']);
  });
  it('nicIrqs: mlx5 by PCI address picks only the lab port 03:00.1', () => {
    expect(nicIrqs(fx('mlx5-proc-interrupts.txt'), { ifname: 'ens1f1np1', busInfo: '0000:03:00.1' }).map((l) => l.irq)).toEqual([41, 42, 43, 44, 45, 46, 47]);
    expect(nicIrqs(fx('mlx5-proc-interrupts.txt'), { ifname: 'ens1f1np1' })).toEqual([]);
  });
  it('nicIrqs: msi_irqs (what Electrode\'s script used) wins', () => {
    expect(nicIrqs(fx('mlx5-proc-interrupts.txt'), { ifname: 'x', busInfo: '0000:03:00.0', msiIrqs: [44, 45, 99] }).map((l) => l.irq)).toEqual([44, 45]);
  });
  it('nicIrqs: i40e by name; eno1 does not take eno10\'s vectors', () => {
    expect(nicIrqs(fx('i40e-proc-interrupts.txt'), { ifname: 'eno1' }).map((l) => l.names[0])).toEqual(['i40e-eno1-TxRx-0', 'i40e-eno1-TxRx-1', 'i40e-eno1-TxRx-2', 'i40e-eno1-TxRx-3']);
    expect(nicIrqs(fx('i40e-proc-interrupts.txt'), { ifname: 'eno1', busInfo: '0000:3b:00.0' }).map((l) => l.irq)).toEqual([71, 72, 73, 74]);
  });
  it('nicIrqs: virtio-net by the PCI address in the chip column (real capture)', () => {
    expect(nicIrqs(fx('virtio-vm-proc-interrupts.txt'), { ifname: 'eth0', busInfo: '0000:00:03.0' }).map((l) => l.names[0])).toEqual(['virtio2-config', 'virtio2-input.0', 'virtio2-output.0']);
    expect(nicIrqs(fx('virtio-vm-proc-interrupts.txt'), { ifname: 'eth0' })).toEqual([]);
  });
  it('msi_irqs listing, affinity read command and its output', () => {
    expect(msiIrqsArgv('ens1f1np1')).toEqual(['ls', '/sys/class/net/ens1f1np1/device/msi_irqs']);
    expect(parseMsiIrqs('47\n41\n42\n')).toEqual([41, 42, 47]);
    expect(readAffinityArgv([41, 42])).toEqual(['grep', '-H', '', '/proc/irq/41/smp_affinity_list', '/proc/irq/42/smp_affinity_list']);
    expect(parseAffinityDump('/proc/irq/41/smp_affinity_list:0-3\n/proc/irq/42/smp_affinity_list:2\ngrep: /proc/irq/9/x: No such file\n/proc/irq/43/smp_affinity_list:bogus\n')).toEqual({ 41: '0-3', 42: '2' });
  });
  it('cpu lists and pgrep exit codes', () => {
    expect(expandCpuList('0-3,8,2')).toEqual([0, 1, 2, 3, 8]);
    expect([0, 1, 2].map(irqbalanceRunning)).toEqual([true, false, undefined]);
  });
});

// ---------------------------------------------------------------- plans for fixtures

const mlx5Affinity = { 41: '0-3', 42: '0-3', 43: '0-3', 44: '3', 45: '0', 46: '1', 47: '2' };
const mlx5Facts = (over: Partial<TuningFacts> = {}): TuningFacts => ({
  ifname: 'ens1f1np1',
  link: link('ens1f1np1', 1500),
  coalesce: fx('mlx5-ethtool-6.1-c.txt'),
  channels: fx('mlx5-ethtool-6.1-l.txt'),
  irqbalanceExit: 0,
  interrupts: fx('mlx5-proc-interrupts.txt'),
  busInfo: '0000:03:00.1',
  msiIrqs: '41\n42\n43\n44\n45\n46\n47\n',
  affinity: affinity(mlx5Affinity),
  ...over,
});

describe('planTuning: exact argv for the fixtures', () => {
  it('mlx5 (xl170), Electrode settings: MTU, coalescing off, 1 queue, irqbalance stopped, IRQs on CPU 0', () => {
    const p = planTuning(ELECTRODE, mlx5Facts());
    expect(p.diagnostics).toEqual([]);
    expect(p.apply).toEqual([
      ['ip', 'link', 'set', 'dev', 'ens1f1np1', 'mtu', '3000'],
      ['ethtool', '-C', 'ens1f1np1', 'adaptive-rx', 'off', 'adaptive-tx', 'off', 'rx-usecs', '0', 'rx-frames', '1', 'tx-usecs', '0', 'tx-frames', '1'],
      ['ethtool', '-L', 'ens1f1np1', 'combined', '1'],
      ['systemctl', 'stop', 'irqbalance.service'],
      echo(41, '0'),
      echo(42, '0'),
      echo(43, '0'),
      echo(44, '0'),
      // 45 is on CPU 0 already
      echo(46, '0'),
      echo(47, '0'),
    ]);
    expect(p.restore).toEqual([
      echo(47, '2'),
      echo(46, '1'),
      echo(44, '3'),
      echo(43, '0-3'),
      echo(42, '0-3'),
      echo(41, '0-3'),
      ['systemctl', 'start', 'irqbalance.service'],
      ['ethtool', '-L', 'ens1f1np1', 'combined', '4'], // it had 4 queues: 4 again
      ['ethtool', '-C', 'ens1f1np1', 'adaptive-rx', 'on', 'adaptive-tx', 'on', 'rx-usecs', '8', 'rx-frames', '128', 'tx-usecs', '16', 'tx-frames', '32'],
      ['ip', 'link', 'set', 'dev', 'ens1f1np1', 'mtu', '1500'],
    ]);
    expect(p.saved).toEqual({
      schema: 1,
      ifname: 'ens1f1np1',
      mtu: { from: 1500, to: 3000 },
      coalesce: {
        from: { 'adaptive-rx': 'on', 'adaptive-tx': 'on', 'rx-usecs': '8', 'rx-frames': '128', 'tx-usecs': '16', 'tx-frames': '32' },
        to: { 'adaptive-rx': 'off', 'adaptive-tx': 'off', 'rx-usecs': '0', 'rx-frames': '1', 'tx-usecs': '0', 'tx-frames': '1' },
      },
      channels: { from: { combined: 4 }, to: { combined: 1 } },
      irqbalance: { stopped: true },
      irqAffinity: [
        { irq: 41, from: '0-3', to: '0' },
        { irq: 42, from: '0-3', to: '0' },
        { irq: 43, from: '0-3', to: '0' },
        { irq: 44, from: '3', to: '0' },
        { irq: 46, from: '1', to: '0' },
        { irq: 47, from: '2', to: '0' },
      ],
    });
  });
  it('restore is rebuilt from the saved JSON alone (what `down` reads from the lab state)', () => {
    const p = planTuning(ELECTRODE, mlx5Facts());
    expect(tuningRestore(JSON.parse(JSON.stringify(p.saved)))).toEqual(p.restore);
  });
  it('without msi_irqs the IRQs are found by bus-info; irqbalance not running: neither stopped nor started', () => {
    const p = planTuning(ELECTRODE, mlx5Facts({ msiIrqs: undefined, irqbalanceExit: 1 }));
    expect(p.apply.filter((a) => a[0] === 'sh').map((a) => a[2])).toHaveLength(6);
    expect(p.apply.flat()).not.toContain('systemctl');
    expect(p.restore.flat()).not.toContain('systemctl');
    expect(p.notes).toContain('irqbalance: not running');
  });
  it('ethtool 5.4 (ioctl): zero/off targets and frames where non-zero now; tx-frames shown 0 is left, with a note', () => {
    const p = planTuning(ELECTRODE, mlx5Facts({ coalesce: fx('mlx5-ethtool-5.4-ioctl-c.txt'), channels: fx('mlx5-ethtool-5.4-ioctl-l.txt') }));
    expect(p.apply[1]).toEqual(['ethtool', '-C', 'ens1f1np1', 'adaptive-rx', 'off', 'adaptive-tx', 'off', 'rx-usecs', '0', 'rx-frames', '1', 'tx-usecs', '0']);
    expect(p.restore[p.restore.length - 2]).toEqual(['ethtool', '-C', 'ens1f1np1', 'adaptive-rx', 'on', 'adaptive-tx', 'on', 'rx-usecs', '8', 'rx-frames', '128', 'tx-usecs', '16']);
    expect(p.notes).toContain("coalescing: tx-frames left at 0: this ethtool's output cannot tell whether the driver supports them");
    expect(p.apply[2]).toEqual(['ethtool', '-L', 'ens1f1np1', 'combined', '1']);
  });
  it('i40e: only supported parameters (no rx/tx-frames), 4 combined queues -> 1 and back to 4; spread IRQs over the CPUs', () => {
    const p = planTuning(
      { ...DEFAULT_TUNING, mtu: 'keep', irqAffinity: 'spread' },
      {
        ifname: 'eno1',
        link: link('eno1', 1500),
        coalesce: fx('i40e-ethtool-5.x-netlink-c.txt'),
        channels: fx('i40e-ethtool-5.x-netlink-l.txt'),
        irqbalanceExit: 0,
        interrupts: fx('i40e-proc-interrupts.txt'),
        affinity: affinity({ 71: '0-3', 72: '0-3', 73: '2', 74: '0-3' }),
      },
    );
    expect(p.diagnostics).toEqual([]);
    expect(p.apply).toEqual([
      ['ethtool', '-C', 'eno1', 'adaptive-rx', 'off', 'adaptive-tx', 'off', 'rx-usecs', '0', 'tx-usecs', '0'],
      ['ethtool', '-L', 'eno1', 'combined', '1'],
      ['systemctl', 'stop', 'irqbalance.service'],
      echo(71, '0'),
      echo(72, '1'),
      echo(74, '3'),
    ]);
    expect(p.restore).toEqual([
      echo(74, '0-3'),
      echo(72, '0-3'),
      echo(71, '0-3'),
      ['systemctl', 'start', 'irqbalance.service'],
      ['ethtool', '-L', 'eno1', 'combined', '4'],
      ['ethtool', '-C', 'eno1', 'adaptive-rx', 'on', 'adaptive-tx', 'on', 'rx-usecs', '50', 'tx-usecs', '50'],
    ]);
    expect(p.notes).toContain('coalescing: rx-frames, tx-frames not supported by the driver (n/a): left alone');
  });
  it('veth (real ethtool -l; ethtool -c failed): no -C command and a note; queues already 1; no IRQs', () => {
    const p = planTuning(ELECTRODE, { ifname: 'va', link: link('va', 1500), channels: fx('veth-ethtool-6.1-l.txt'), irqbalanceExit: 1, interrupts: fx('virtio-vm-proc-interrupts.txt') });
    expect(p.diagnostics).toEqual([]);
    expect(p.apply).toEqual([['ip', 'link', 'set', 'dev', 'va', 'mtu', '3000']]);
    expect(p.restore).toEqual([['ip', 'link', 'set', 'dev', 'va', 'mtu', '1500']]);
    expect(p.notes).toEqual([
      'coalescing: va has no coalescing settings (ethtool -c failed): no -C command',
      'queues: already 1',
      'irqbalance: not running',
      'irq affinity: no IRQs of va in /proc/interrupts (virtual NIC?): left alone',
    ]);
  });
  it('rx/tx channels without combined ones: -L rx N tx N, and back', () => {
    const p = planTuning({ ...ELECTRODE, mtu: 'keep', queues: 2, irqAffinity: 'keep' }, { ifname: 'va', link: link('va', 1500), channels: fx('veth-ethtool-6.1-l.txt'), irqbalanceExit: 1, interrupts: '' });
    expect(p.apply).toEqual([['ethtool', '-L', 'va', 'rx', '2', 'tx', '2']]);
    expect(p.restore).toEqual([['ethtool', '-L', 'va', 'rx', '1', 'tx', '1']]);
  });
  it('combined next to separate rx/tx channels in use (bnxt-style): those go to 0, and come back', () => {
    const ch = 'Pre-set maximums:\nRX:\t\t8\nTX:\t\t8\nOther:\t\tn/a\nCombined:\t8\nCurrent hardware settings:\nRX:\t\t4\nTX:\t\t4\nOther:\t\tn/a\nCombined:\t0\n';
    const p = planTuning({ ...ELECTRODE, mtu: 'keep', coalescing: 'keep', irqbalance: 'keep', irqAffinity: 'keep' }, { ifname: 'e', link: link('e', 1500), channels: ch, irqbalanceExit: 1, interrupts: '' });
    expect(p.apply).toEqual([['ethtool', '-L', 'e', 'combined', '1', 'rx', '0', 'tx', '0']]);
    expect(p.restore).toEqual([['ethtool', '-L', 'e', 'combined', '0', 'rx', '4', 'tx', '4']]);
  });
  it('keep everything: no commands at all', () => {
    const p = planTuning({ mtu: 'keep', coalescing: 'keep', queues: 'keep', irqbalance: 'keep', irqAffinity: 'keep', irqCpu: 0 }, mlx5Facts());
    expect([p.apply, p.restore, p.diagnostics]).toEqual([[], [], []]);
    expect(p.saved).toEqual({ schema: 1, ifname: 'ens1f1np1' });
  });
  it('irqbalance kept while IRQs are pinned: a note that it may move them again', () => {
    expect(planTuning({ ...ELECTRODE, irqbalance: 'keep' }, mlx5Facts()).notes).toContain('irqbalance: keeps running and may move the pinned IRQs again (tuning.irqbalance: off stops it)');
  });
  it('tuningTarget: the inventory MTU, else keep', () => {
    const inv = validateInventory({ nic: { name: 'eth1' }, nodes: [0, 1, 2, 3].map((i) => ({ ssh: { host: `h${i}` } })) }).inventory!;
    expect(tuningTarget(inv)).toEqual({ ...DEFAULT_TUNING, mtu: 'keep' });
    expect(tuningTarget({ ...inv, mtu: 3000 }).mtu).toBe(3000);
  });

  it.each([
    ['TUNE_QUEUES_MAX', { ...ELECTRODE, queues: 8 }, {}, 'ens1f1np1: queues=8'],
    ['TUNE_IRQ_CPU', { ...ELECTRODE, irqCpu: 4 }, {}, 'ens1f1np1: irqCpu=4'],
    ['TUNE_NO_AFFINITY', ELECTRODE, { affinity: affinity({ 41: '0', 42: '0' }) }, 'ens1f1np1: irq 43,44,45,46,47'],
    ['TUNE_BAD_FACT', ELECTRODE, { irqbalanceExit: 2 }, 'ens1f1np1: irqbalance'],
    ['TUNE_BAD_FACT', ELECTRODE, { interrupts: ' 41: 1 IR-PCI-MSI 1-edge x\n' }, 'ens1f1np1: /proc/interrupts'],
    ['TUNE_NO_LINK', ELECTRODE, { link: 'not json' }, 'ens1f1np1: mtu'],
    ['TUNE_NO_LINK', ELECTRODE, { link: link('other', 1500) }, 'ens1f1np1: mtu'],
  ] as [string, TuningTarget, Partial<TuningFacts>, string][])('%s (%s) -> no commands', (code, target, over, subject) => {
    const p = planTuning(target, mlx5Facts(over));
    expect(p.diagnostics.map((d) => [d.code, d.subject])).toEqual([[code, subject]]);
    expect([p.apply, p.restore]).toEqual([[], []]);
  });
  it('TUNE_QUEUES_MAX for rx/tx channels too; the hint names the limit', () => {
    const p = planTuning({ ...ELECTRODE, queues: 3, irqAffinity: 'keep' }, { ifname: 'va', link: link('va', 1500), channels: fx('veth-ethtool-6.1-l.txt'), irqbalanceExit: 1, interrupts: '' });
    expect(p.diagnostics).toEqual([expect.objectContaining({ code: 'TUNE_QUEUES_MAX', hint: 'use tuning.queues 2 or less' })]);
  });
});

// ---------------------------------------------------------------- a fake NIC that runs the argv

interface NicState {
  ifname: string;
  mtu: number;
  /** undefined: the driver has no coalescing settings at all (ethtool -c fails). */
  coalesce?: Record<string, string | null>;
  channels?: { max: ChannelCounts; current: ChannelCounts };
  irqbalance: boolean;
  cpus: number;
  irqs: { irq: number; name: string; affinity: string }[];
}

class FakeNic {
  constructor(public state: NicState) {}

  facts(): TuningFacts {
    const s = this.state;
    const v = (x: string | null | undefined) => (x === null || x === undefined ? 'n/a' : x);
    const c = s.coalesce;
    const coalesce = c
      ? `Coalesce parameters for ${s.ifname}:\nAdaptive RX: ${v(c['adaptive-rx'])}  TX: ${v(c['adaptive-tx'])}\n` +
        ['rx-usecs', 'rx-frames', 'tx-usecs', 'tx-frames'].map((k) => `${k}:\t${v(c[k])}`).join('\n') +
        '\n'
      : undefined;
    const ch = s.channels;
    const kinds = ['RX', 'TX', 'Other', 'Combined'];
    const block = (cc: ChannelCounts) => kinds.map((k) => `${k}:\t\t${v(cc[k.toLowerCase() as keyof ChannelCounts]?.toString())}`).join('\n');
    return {
      ifname: s.ifname,
      link: JSON.stringify([{ ifname: s.ifname, mtu: s.mtu }]),
      ...(coalesce ? { coalesce } : {}),
      ...(ch ? { channels: `Channel parameters for ${s.ifname}:\nPre-set maximums:\n${block(ch.max)}\nCurrent hardware settings:\n${block(ch.current)}\n` } : {}),
      irqbalanceExit: s.irqbalance ? 0 : 1,
      interrupts: `${Array.from({ length: s.cpus }, (_, i) => `CPU${i}`).join('   ')}\n` + s.irqs.map((q) => `${q.irq}: ${Array(s.cpus).fill('0').join(' ')} IR-PCI-MSI ${q.irq}-edge ${q.name}`).join('\n') + '\n',
      affinity: affinity(Object.fromEntries(this.state.irqs.map((q) => [q.irq, q.affinity]))),
    };
  }

  /** Executes one argv the way the tools would, refusing what they would refuse. */
  exec(argv: string[]): void {
    const s = this.state;
    const [cmd, ...a] = argv;
    const kv = (rest: string[]) => {
      if (rest.length % 2) throw new Error(`odd arguments: ${argv.join(' ')}`);
      return Array.from({ length: rest.length / 2 }, (_, i) => [rest[2 * i]!, rest[2 * i + 1]!] as const);
    };
    if (cmd === 'ip' && a[0] === 'link' && a[1] === 'set' && a[2] === 'dev' && a[3] === s.ifname && a[4] === 'mtu' && a.length === 6) {
      s.mtu = Number(a[5]);
    } else if (cmd === 'ethtool' && a[0] === '-C' && a[1] === s.ifname) {
      if (!s.coalesce) throw new Error('netlink error: Operation not supported');
      for (const [k, val] of kv(a.slice(2))) {
        if (s.coalesce[k] === undefined || s.coalesce[k] === null) throw new Error(`netlink error: ${k}: Operation not supported`);
        s.coalesce[k] = val;
      }
    } else if (cmd === 'ethtool' && a[0] === '-L' && a[1] === s.ifname) {
      if (!s.channels) throw new Error('netlink error: Operation not supported');
      for (const [k, val] of kv(a.slice(2))) {
        const key = k as keyof ChannelCounts;
        const max = s.channels.max[key];
        if (max === undefined || Number(val) > max) throw new Error(`netlink error: requested channel count exceeds maximum (${k} ${val})`);
        s.channels.current[key] = Number(val);
      }
    } else if (cmd === 'systemctl' && a[1] === 'irqbalance.service' && (a[0] === 'stop' || a[0] === 'start') && a.length === 2) {
      s.irqbalance = a[0] === 'start';
    } else if (cmd === 'sh' && a[0] === '-c' && a.length === 2) {
      const m = /^echo ([0-9,-]+) > \/proc\/irq\/(\d+)\/smp_affinity_list$/.exec(a[1]!);
      const q = m && s.irqs.find((x) => x.irq === Number(m[2]));
      if (!q) throw new Error(`sh: ${a[1]}: No such file or directory`);
      q.affinity = m[1]!;
    } else {
      throw new Error(`unknown command: ${argv.join(' ')}`);
    }
  }
}

const scenarios: [string, NicState][] = [
  [
    'mlx5-like: everything supported, 4 queues, irqbalance running',
    {
      ifname: 'ens1f1np1',
      mtu: 1500,
      coalesce: { 'adaptive-rx': 'on', 'adaptive-tx': 'on', 'rx-usecs': '8', 'rx-frames': '128', 'tx-usecs': '16', 'tx-frames': '32' },
      channels: { max: { combined: 8 }, current: { combined: 4 } },
      irqbalance: true,
      cpus: 4,
      irqs: [
        { irq: 44, name: 'ens1f1np1-TxRx-0', affinity: '3' },
        { irq: 45, name: 'ens1f1np1-TxRx-1', affinity: '0' },
        { irq: 46, name: 'ens1f1np1-TxRx-2', affinity: '1-2' },
        { irq: 47, name: 'ens1f1np1-TxRx-3', affinity: '0-3' },
      ],
    },
  ],
  [
    'i40e-like: no frames, no irqbalance, part already tuned',
    {
      ifname: 'eno1',
      mtu: 3000,
      coalesce: { 'adaptive-rx': 'off', 'adaptive-tx': 'on', 'rx-usecs': '50', 'rx-frames': null, 'tx-usecs': '0', 'tx-frames': null },
      channels: { max: { other: 1, combined: 40 }, current: { other: 1, combined: 16 } },
      irqbalance: false,
      cpus: 2,
      irqs: [{ irq: 71, name: 'i40e-eno1-TxRx-0', affinity: '0-1' }],
    },
  ],
  [
    'veth-like: no coalescing at all, rx/tx channels, no IRQs',
    { ifname: 'va', mtu: 9000, channels: { max: { rx: 2, tx: 2 }, current: { rx: 2, tx: 1 } }, irqbalance: true, cpus: 2, irqs: [] },
  ],
  [
    'bnxt-like: combined beside rx/tx in use',
    {
      ifname: 'ens2',
      mtu: 1500,
      coalesce: { 'adaptive-rx': null, 'adaptive-tx': null, 'rx-usecs': '10', 'rx-frames': '15', 'tx-usecs': '28', 'tx-frames': '30' },
      channels: { max: { rx: 8, tx: 8, combined: 8 }, current: { rx: 4, tx: 4, combined: 0 } },
      irqbalance: true,
      cpus: 8,
      irqs: [
        { irq: 90, name: 'ens2-TxRx-0', affinity: '0-7' },
        { irq: 91, name: 'ens2-TxRx-1', affinity: '0-7' },
      ],
    },
  ],
];

describe.each(scenarios)('on a fake NIC (%s)', (_name, initial) => {
  const targets: [string, TuningTarget][] = [
    ['Electrode (pin)', ELECTRODE],
    ['spread, 2 queues, MTU 1500', { ...DEFAULT_TUNING, mtu: 1500, queues: 2, irqAffinity: 'spread' }],
  ];
  it.each(targets)('%s: apply reaches the target, a second plan is empty, restore gives back the exact initial state', (_t, target) => {
    const nic = new FakeNic(structuredClone(initial));
    const plan = planTuning(target, nic.facts());
    expect(plan.diagnostics).toEqual([]);
    for (const argv of plan.apply) nic.exec(argv);

    const s = nic.state;
    expect(s.mtu).toBe(target.mtu);
    for (const [k, want] of [['adaptive-rx', 'off'], ['adaptive-tx', 'off'], ['rx-usecs', '0'], ['rx-frames', '1'], ['tx-usecs', '0'], ['tx-frames', '1']]) {
      if (s.coalesce && s.coalesce[k!] !== null) expect(s.coalesce[k!]).toBe(want);
    }
    const q = target.queues as number;
    if (s.channels!.max.combined) expect(s.channels!.current).toMatchObject({ combined: q, ...(s.channels!.max.rx ? { rx: 0, tx: 0 } : {}) });
    else expect(s.channels!.current).toMatchObject({ rx: q, tx: q });
    expect(s.irqbalance).toBe(false);
    s.irqs.forEach((irq, k) => expect(irq.affinity).toBe(target.irqAffinity === 'pin' ? '0' : String(k % s.cpus)));

    const again = planTuning(target, nic.facts());
    expect(again.apply).toEqual([]);

    for (const argv of plan.restore) nic.exec(argv);
    expect(nic.state).toEqual(initial);
  });
});

// ---------------------------------------------------------------- for real, on a veth in our own namespace

const canNetns = process.getuid?.() === 0 && spawnSync('ethtool', ['--version']).status === 0 && spawnSync('ip', ['-V']).status === 0;

describe.runIf(canNetns)('for real: the argv on a veth in a private network namespace', () => {
  const ns = `el-hosts-tune-${process.pid}`;
  const inNs = (argv: string[]) => spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8' });
  afterAll(() => {
    spawnSync('ip', ['netns', 'delete', ns]);
  });

  it('ethtool -L and ip link set mtu do what the plan says, and restore puts them back', () => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'va', 'up']);
    const facts = (): TuningFacts => {
      const c = inNs(['ethtool', '-c', 'va']);
      const l = inNs(['ethtool', '-l', 'va']);
      return {
        ifname: 'va',
        link: inNs(['ip', '-j', 'link', 'show', 'va']).stdout,
        ...(c.status === 0 ? { coalesce: c.stdout } : {}),
        ...(l.status === 0 ? { channels: l.stdout } : {}),
        irqbalanceExit: 1, // never touch the host's irqbalance from a test
        interrupts: readFileSync('/proc/interrupts', 'utf8'),
      };
    };
    const before = facts();
    const ch = parseEthtoolChannels(before.channels!);
    const queues = ch.max.rx!; // veth: as many rx/tx channels as CPUs
    expect(ch.current).toEqual({ rx: 1, tx: 1 });
    const target: TuningTarget = { ...DEFAULT_TUNING, mtu: 1400, queues, irqbalance: 'keep', irqAffinity: 'keep' };
    const plan = planTuning(target, before);
    expect(plan.diagnostics).toEqual([]);
    for (const argv of plan.apply) expect(inNs(argv).stderr).toBe('');

    const during = facts();
    expect(JSON.parse(during.link)[0].mtu).toBe(1400);
    if (queues > 1) expect(parseEthtoolChannels(during.channels!).current).toEqual({ rx: queues, tx: queues });
    expect(planTuning(target, during).apply).toEqual([]);

    for (const argv of plan.restore) expect(inNs(argv).stderr).toBe('');
    const after = facts();
    expect(JSON.parse(after.link)[0].mtu).toBe(1500);
    expect(parseEthtoolChannels(after.channels!).current).toEqual({ rx: 1, tx: 1 });
  });
});
