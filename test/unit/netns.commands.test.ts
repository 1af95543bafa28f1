/** The netns provider's command sequence (recording runner) and its pure parsers. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LabPaths } from '../../src/edges/paths.js';
import { NO_FACTS, planFromInputs } from '../../src/core/plan.js';
import { QuietProgress } from '../../src/edges/progress.js';
import { labNamespaceRegex, NetnsProvider, parseAttachedBpf, parseNetnsList } from '../../src/providers/netns.js';
import { RecordingRunner } from '../../src/edges/runner.js';
import { formatStatusTable } from '../../src/commands/status.js';

const home = mkdtempSync(join(tmpdir(), 'el-unit-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('netns provider command sequence (recording runner, nothing runs)', () => {
  const plan = planFromInputs([{ name: 'rec', replicas: 3, mtu: 3000 }], NO_FACTS);
  const ctx = (runner: RecordingRunner) => ({ runner, paths: new LabPaths(home, 'rec'), progress: new QuietProgress() });

  it('up: switch namespace and bridge first, then per node: namespace, veth created INSIDE the switch ns with the peer in the node ns', async () => {
    const r = new RecordingRunner();
    await new NetnsProvider().up(plan, ctx(r));
    const lines = r.lines();
    // nothing is created on the root namespace: every `ip link` runs with -n
    for (const l of lines.filter((x) => /^ip link|^ip addr/.test(x))) throw new Error(`root namespace touched: ${l}`);
    expect(lines).toContain('ip netns add el-rec-sw');
    expect(lines).toContain('ip -n el-rec-sw link add name br0 mtu 3000 type bridge');
    expect(lines).toContain('ip -n el-rec-sw link add p-replica1 mtu 3000 type veth peer name eth0 mtu 3000 netns el-rec-replica1');
    expect(lines).toContain('ip -n el-rec-sw link set p-replica1 master br0 up');
    // no firewall on the lab switch (br_netfilter, where the host has it); no GRO on its ports
    expect(lines).toContain('nsenter --net=/run/netns/el-rec-sw -- sysctl -q -w net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0');
    expect(lines.some((l) => /ethtool -K p-replica\d gro on/.test(l))).toBe(false);
    expect(lines).toContain(`ip -n el-rec-replica1 link set eth0 address ${plan.nodes[1]!.mac}`);
    expect(lines).toContain('ip -n el-rec-replica1 addr add 10.77.0.11/24 brd + dev eth0');
    expect(lines).toContain('ip -n el-rec-client0 link set eth0 up');
    expect(lines.some((l) => l.startsWith('mkdir -p /sys/fs/bpf/electrode-lab/rec/replica0'))).toBe(true);
    expect(lines.indexOf('ip netns add el-rec-sw')).toBeLessThan(lines.indexOf('ip netns add el-rec-replica0'));
  });

  it('down: kills what runs in each namespace, deletes node namespaces before the switch, removes the pin root', async () => {
    const r = new RecordingRunner((argv) => {
      if (argv.join(' ') === 'ip netns list') return { stdout: 'el-rec-replica0 (id: 4)\nel-rec-sw (id: 3)\nel-rec-2-replica0\nel-recx-sw\nel-rec-replica7\n' };
      if (argv.join(' ') === 'ip netns pids el-rec-replica0') return { stdout: '' };
      return {};
    });
    await new NetnsProvider().down(plan, ctx(r));
    const dels = r.lines().filter((l) => l.startsWith('ip netns del'));
    // a lab named 'rec' never touches lab 'rec-2' or 'recx'; a leftover replica7 from a bigger run is swept
    expect(dels).toEqual(['ip netns del el-rec-replica0', 'ip netns del el-rec-replica7', 'ip netns del el-rec-sw']);
  });
});

describe('parsers', () => {
  it('labNamespaceRegex matches exactly one lab', () => {
    const re = labNamespaceRegex('a');
    expect(['el-a-sw', 'el-a-replica0', 'el-a-client12'].every((n) => re.test(n))).toBe(true);
    expect(['el-a-2-sw', 'el-ab-sw', 'el-a-replica', 'xel-a-sw', 'el-a-sw2'].some((n) => re.test(n))).toBe(false);
  });
  it('parseNetnsList handles "(id: N)" suffixes and blank lines', () => {
    expect(parseNetnsList('x (id: 1)\n\ny\n')).toEqual(['x', 'y']);
  });
  it('parseAttachedBpf: native and generic XDP from ip -j, TC programs from tc (chain header lines ignored)', () => {
    const ipj = JSON.stringify([{ ifname: 'eth0', xdp: { mode: 2, prog: { id: 146, name: 'el_xdp' } } }]);
    const tc = 'filter protocol all pref 49152 bpf chain 0 \nfilter protocol all pref 49152 bpf chain 0 handle 0x1 p.o:[tc] direct-action not_in_hw id 150 name el_tc_bcast tag 59f4 jited \n';
    expect(parseAttachedBpf(ipj, tc)).toEqual(['xdp(generic) el_xdp id 146', 'tc egress el_tc_bcast id 150']);
    const multi = JSON.stringify([{ xdp: { attached: [{ mode: 1, prog: { id: 7, name: 'a' } }] } }]);
    expect(parseAttachedBpf(multi, '')).toEqual(['xdp(native) a id 7']);
    expect(parseAttachedBpf('', '')).toEqual([]);
    expect(parseAttachedBpf(JSON.stringify([{ ifname: 'eth0' }]), '')).toEqual([]);
  });
  it('status table lists every node with its processes and eBPF', () => {
    const t = formatStatusTable([
      { node: 'replica0', role: 'replica', ip: '10.0.0.10', mac: '02:4c:00:00:00:00', port: 51000, state: 'up', processes: [{ name: 'replica', pid: 12, alive: false }], bpf: ['xdp(native) x id 1'] },
      { node: 'client0', role: 'client', ip: '10.0.0.11', mac: '02:4c:00:00:01:00', port: 51100, state: 'down', processes: [], bpf: [], detail: 'gone' },
    ]);
    expect(t).toMatch(/^NODE\s+STATE\s+IP/);
    expect(t).toContain('replica:12(dead)');
    expect(t).toContain('xdp(native) x id 1');
    expect(t).toContain('client0: gone');
  });
});
