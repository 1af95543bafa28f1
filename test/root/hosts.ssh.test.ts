/**
 * The hosts provider against machines reached over real SSH: a netns lab
 * stands in for the machines (one real sshd, Debian's openssh-server, inside
 * each node's namespace, root login by key), and the CLI runs from a control
 * namespace on the lab network, as an operator's laptop would. It drives
 * them as if they were remote: up (preflight, adoption of their addresses,
 * Electrode's NIC tuning), attach, a bench with a replica crashing on
 * purpose (core and backtrace from the machine), down (the NIC settings it
 * changed are back, nothing of the lab is left).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { nsenterArgv } from '../../src/providers/netns.js';
import { until } from '../../src/edges/proc.js';
import { inNode, isRoot, TestLab, upLab } from '../helpers/bpf.helpers.js';
import { projectRoot } from '../../src/edges/paths.js';

const SSHD = '/usr/sbin/sshd';
const haveSshd = existsSync(SSHD);
if (isRoot && !haveSshd) console.log('[hosts] skipping the SSH tests: /usr/sbin/sshd is missing (apt-get install openssh-server)');
const CLI = join(projectRoot(), 'dist', 'src', 'cli.js');
const PORT = 2222;
const LAB = 'hst';

describe.skipIf(!isRoot || !haveSshd)('hosts provider over real SSH (machines: a netns lab running sshd)', () => {
  let machines: TestLab;
  let tmp: string;
  let home: string;
  const ctl = `el-hostctl-${process.pid % 10000}`;
  const sshds: ChildProcess[] = [];

  const cli = (...args: string[]) => {
    const [file, ...rest] = nsenterArgv(ctl, ['node', CLI, '--name', LAB, ...args]);
    return execa(file!, rest, { reject: false, env: { ...process.env, ELECTRODE_LAB_HOME: home, ELECTRODE_LAB_RUNS: join(tmp, 'runs'), CI: 'true' }, timeout: 600_000 });
  };
  const mtuOf = async (i: number) => (JSON.parse((await inNode(machines.plan.nodes[i]!, ['ip', '-j', 'link', 'show', 'dev', 'eth0'])).stdout) as { mtu: number }[])[0]!.mtu;
  const rxChannels = async (i: number) => Number(/Current hardware settings:[\s\S]*?RX:\s*(\d+)/.exec((await inNode(machines.plan.nodes[i]!, ['ethtool', '-l', 'eth0'])).stdout)?.[1]);

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'el-hosts-'));
    home = join(tmp, 'home');
    machines = await upLab('hst', 3);
    // the operator's machine: a namespace on the lab bridge
    const sw = machines.plan.network.switchNs;
    await execa('ip', ['netns', 'add', ctl]);
    await execa('ip', ['-n', sw, 'link', 'add', 'name', 'p-ctl', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ctl]);
    await execa('ip', ['-n', sw, 'link', 'set', 'p-ctl', 'master', machines.plan.network.bridge, 'up']);
    await execa('ip', ['-n', ctl, 'addr', 'add', '10.231.0.250/24', 'dev', 'eth0']);
    await execa('ip', ['-n', ctl, 'link', 'set', 'eth0', 'up']);
    await execa('ip', ['-n', ctl, 'link', 'set', 'lo', 'up']);
    // keys and one sshd per machine
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, 'id')]);
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, 'host_key')]);
    writeFileSync(join(tmp, 'authorized_keys'), readFileSync(join(tmp, 'id.pub')));
    mkdirSync('/run/sshd', { recursive: true });
    writeFileSync(
      join(tmp, 'sshd_config'),
      [`HostKey ${join(tmp, 'host_key')}`, `AuthorizedKeysFile ${join(tmp, 'authorized_keys')}`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'StrictModes no', 'UsePAM no', 'PidFile none', ''].join('\n'),
    );
    for (const n of machines.plan.nodes) {
      const [file, ...args] = nsenterArgv(n.netns, [SSHD, '-D', '-e', '-f', join(tmp, 'sshd_config'), '-o', `ListenAddress=${n.ip}:${PORT}`]);
      const p = spawn(file!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      p.stderr!.on('data', () => undefined);
      sshds.push(p);
    }
    for (const n of machines.plan.nodes) {
      const ok = await until(async () => (await inNode(n, ['ss', '-Htln', `sport = :${PORT}`])).stdout.trim() !== '', 10_000);
      expect(ok, `sshd on ${n.name}`).toBe(true);
    }
    // the inventory an operator writes: where to ssh, which NIC; addresses and MACs are the machines'
    const inventory = {
      lab: LAB,
      ssh: { port: PORT, user: 'root', key: join(tmp, 'id') },
      nic: { name: 'eth0' },
      mtu: 1400,
      tuning: { queues: 2, irqbalance: 'off' },
      nodes: machines.plan.nodes.map((n) => ({ name: n.name, role: n.role, ssh: { host: n.ip } })),
    };
    writeFileSync(join(tmp, 'hosts.yaml'), toYaml(inventory));
  }, 180_000);

  afterAll(async () => {
    if (home && existsSync(join(home, 'labs', LAB))) await cli('down');
    for (const p of sshds) if (p.pid) process.kill(p.pid, 'SIGTERM');
    await until(async () => sshds.every((p) => p.exitCode !== null || p.signalCode !== null), 5000);
    await execa('ip', ['netns', 'del', ctl], { reject: false });
    await machines?.down();
    rmSync(tmp, { recursive: true, force: true });
  }, 180_000);

  it('a bad inventory: exit 2, every problem named, nothing created', async () => {
    writeFileSync(join(tmp, 'bad.yaml'), toYaml({ ssh: { user: 'root' }, nodes: [{ ssh: { host: '10.231.0.10' } }, { role: 'referee' }] }));
    const r = await cli('up', '3', '--provider', 'hosts', '--inventory', join(tmp, 'bad.yaml'));
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/nothing was changed/);
    expect(r.stderr).toMatch(/role/);
    expect(existsSync(join(home, 'labs', LAB))).toBe(false);
  });

  it('up adopts the machines (addresses, MACs, NIC) and tunes their lab NIC; attach; a bench with a crash; down restores what it changed', async () => {
    expect(await mtuOf(0)).toBe(1500);
    expect(await rxChannels(0)).toBe(1);
    const up = await cli('up', '3', '--provider', 'hosts', '--inventory', join(tmp, 'hosts.yaml'));
    expect(up.exitCode, up.stderr + up.stdout).toBe(0);
    const plan = JSON.parse(readFileSync(join(home, 'labs', LAB, 'plan.json'), 'utf8')) as { provider: string; nodes: { name: string; ip: string; mac: string; ifname: string }[]; network: { cidr: string; mtu: number } };
    expect(plan.provider).toBe('hosts');
    // the plan adopted what the machines are, not what plan.ts would invent
    for (const n of machines.plan.nodes) {
      const p = plan.nodes.find((x) => x.name === n.name)!;
      expect({ ip: p.ip, mac: p.mac, ifname: p.ifname }).toEqual({ ip: n.ip, mac: n.mac, ifname: 'eth0' });
    }
    expect(plan.network).toMatchObject({ cidr: '10.231.0.0/24', mtu: 1400 });
    // Electrode's tuning, on every machine
    for (let i = 0; i < 4; i++) {
      expect(await mtuOf(i)).toBe(1400);
      expect(await rxChannels(i)).toBe(2);
    }
    const st = await cli('status', '--json');
    expect(st.exitCode, st.stderr).toBe(0);
    const nodes = JSON.parse(st.stdout) as { nodes: { node: string; state: string; detail?: string }[] };
    expect(nodes.nodes.map((x) => x.state)).toEqual(['up', 'up', 'up', 'up']);
    expect(nodes.nodes[0]!.detail).toMatch(/NIC tuned/);

    const at = await cli('attach', '--all', '--hook', 'tc');
    expect(at.exitCode, at.stderr).toBe(0);
    expect(at.stdout).toMatch(/replica2: tc ingress on eth0, fast paths on: broadcast,quorum,reply/);
    const det = await cli('detach');
    expect(det.exitCode, det.stderr).toBe(0);

    // the bench on the machines: replica2 crashes on purpose in every trial
    const b = await cli('bench', '--replicas', '3', '--arms', 'baseline,all', '--threads', '2', '--repeat', '1', '--duration', '1', '--warmup', '0.3', '--hook', 'tc', '--replica-args', '2:--crash-after 200', '--json');
    expect(b.exitCode, b.stderr.slice(-3000)).toBe(0);
    const sum = JSON.parse(b.stdout.trim().split('\n').at(-1)!) as { trials: number; crashed: number; dir: string; crashes: { node: string; signal: string; topFrames: string[]; core?: string; dir: string }[] };
    expect(sum.trials).toBe(2);
    expect(sum.crashes.map((c) => c.node)).toEqual(['replica2', 'replica2']);
    for (const c of sum.crashes) {
      expect(c.signal).toBe('SIGSEGV');
      expect(c.topFrames).toContain('crash_on_purpose');
      expect(c.core, 'the core, copied from the machine').toBe('core');
      expect(readdirSync(join(sum.dir, c.dir))).toContain('node');
    }
    // the machines' core_pattern is theirs again (here: this host's, restored by the bench)
    expect(readFileSync('/proc/sys/kernel/core_pattern', 'utf8')).not.toMatch(/electrode-lab/);

    const down = await cli('down');
    expect(down.exitCode, down.stderr).toBe(0);
    for (let i = 0; i < 4; i++) {
      expect(await mtuOf(i)).toBe(1500);
      expect(await rxChannels(i)).toBe(1);
    }
    expect(existsSync('/sys/fs/bpf/electrode-lab/hst')).toBe(false);
    expect(existsSync(join(home, 'labs', LAB))).toBe(false);
  }, 900_000);
});
