/**
 * Tier 1-2: the vagrant provider's parsers and fixes, and the command
 * sequence it issues (recording runner: no VM needed).
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBoxList } from '../../src/images/boxes.js';
import { LabPaths } from '../../src/edges/paths.js';
import { PlainProgress } from '../../src/edges/progress.js';
import { xdpMode } from '../../src/core/xdp.js';
import { channelsForXdp, ifnameForMac, parseChannels, parseVagrantStatus, VagrantProvider, xdpAttachFix, checkKernelPins, vmStatusDetail } from '../../src/providers/vagrant.js';
import { DryRunRunner, RecordingRunner } from '../../src/edges/runner.js';
import { parseSshConfig } from '../../src/edges/ssh.js';
import { vmPlan } from '../helpers/vagrant.helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'el-vprov-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const quiet = new PlainProgress(() => undefined);

describe('guest-side parsers', () => {
  it('finds the lab NIC by MAC, whatever its name', () => {
    const ipOLink = [
      '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00',
      '2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP mode DEFAULT group default qlen 1000\\    link/ether 52:54:00:7a:c1:b1 brd ff:ff:ff:ff:ff:ff',
      '3: ens6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 3000 qdisc mq state UP mode DEFAULT group default qlen 1000\\    link/ether 02:4c:49:8e:00:01 brd ff:ff:ff:ff:ff:ff',
    ].join('\n');
    expect(ifnameForMac(ipOLink, '02:4C:49:8E:00:01')).toBe('ens6');
    expect(ifnameForMac(ipOLink, '02:4c:49:8e:00:07')).toBeUndefined();
  });

  it('reads virtio-net channels and keeps queue pairs + vCPUs <= max', () => {
    const text = 'Channel parameters for eth1:\nPre-set maximums:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\tn/a\nCombined:\t4\nCurrent hardware settings:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\tn/a\nCombined:\t4\n';
    const ch = parseChannels(text)!;
    expect(ch).toEqual({ max: 4, current: 4 });
    expect(channelsForXdp(ch, 2)).toBe(2);
    expect(channelsForXdp({ max: 4, current: 2 }, 2)).toBeUndefined();
    expect(channelsForXdp({ max: 2, current: 2 }, 2)).toBeUndefined();
  });

  it('tells native from generic XDP in `ip -d -j link` output', () => {
    expect(xdpMode(JSON.stringify([{ ifname: 'eth1', xdp: { mode: 1, prog: { id: 7, name: 'el_xdp_dispatch' } } }]))).toBe('native');
    expect(xdpMode(JSON.stringify([{ ifname: 'eth1', xdp: { mode: 2, prog: { id: 7, name: 'el_xdp_dispatch' } } }]))).toBe('generic');
    expect(xdpMode(JSON.stringify([{ ifname: 'eth1', mtu: 3000 }]))).toBe('none');
  });

  it('translates virtio-net attach failures into the fix', () => {
    const c = { ifname: 'eth1', cpus: 2, queues: 4, mtu: 3000 };
    expect(xdpAttachFix('virtio_net virtio3 eth1: XDP request 2 queues but max is 1', c)).toMatch(/ethtool -L eth1 combined 2/);
    expect(xdpAttachFix('virtio_net: Too few free TX rings available', c)).toMatch(/queue pairs \+ vCPUs/);
    expect(xdpAttachFix('MTU too large to enable XDP', { ...c, mtu: 9000 })).toMatch(/--mtu 3000/);
    expect(xdpAttachFix("Can't set XDP while host is implementing LRO/CSUM, disable LRO/CSUM first", c)).toMatch(/guest tso4='off'/);
  });

  it('status flags a VM whose live kernel drifted from the lab\'s, and only then', () => {
    const ok = vmStatusDetail({ ifname: 'ens6', kernel: '5.8.0-050800-generic', expectedKernel: '5.8.0-050800-generic', fastPaths: 'ok' });
    expect(ok).toBe('lab NIC ens6, kernel 5.8.0-050800-generic');
    const drift = vmStatusDetail({ ifname: 'ens6', kernel: '5.4.0-42-generic', expectedKernel: '5.8.0-050800-generic' });
    expect(drift).toContain('kernel 5.4.0-42-generic DRIFTED from the lab\'s 5.8.0-050800-generic');
    expect(drift).toContain('electrode-lab down');
    // a box that recorded no kernel: nothing to compare against, no false alarm
    expect(vmStatusDetail({ ifname: 'ens6', kernel: '6.1.0-50-cloud-amd64' })).not.toContain('DRIFTED');
    expect(vmStatusDetail({ ifname: 'ens6', expectedKernel: '5.8.0-050800-generic', fastPaths: 'xdp: too few TX queues' })).toBe(
      'lab NIC ens6, kernel ? (uname -r failed), fast paths did not attach at up: xdp: too few TX queues',
    );
  });

  it('parses vagrant ssh-config, status and box list', () => {
    const ssh = parseSshConfig(
      'Host replica0\n  HostName 192.168.121.23\n  User vagrant\n  Port 22\n  UserKnownHostsFile /dev/null\n  IdentityFile /tmp/x/.vagrant/machines/replica0/libvirt/private_key\n  IdentityFile /root/.vagrant.d/insecure_private_key\n  IdentitiesOnly yes\n\nHost client0\n  HostName 192.168.121.24\n  User vagrant\n  Port 2222\n  IdentityFile "/tmp/k y"\n',
    );
    expect(ssh).toEqual([
      { name: 'replica0', host: '192.168.121.23', port: 22, user: 'vagrant', identityFile: '/tmp/x/.vagrant/machines/replica0/libvirt/private_key' },
      { name: 'client0', host: '192.168.121.24', port: 2222, user: 'vagrant', identityFile: '/tmp/k y' },
    ]);
    const st = parseVagrantStatus('1700000000,replica0,metadata,provider,libvirt\n1700000000,replica0,provider-name,libvirt\n1700000000,replica0,state,running\n1700000000,client0,state,not_created\n');
    expect([...st]).toEqual([
      ['replica0', 'running'],
      ['client0', 'not_created'],
    ]);
    expect(parseBoxList('1,,box-name,electrode-lab/debian12\n1,,box-provider,libvirt\n1,,box-version,0\n')).toEqual([{ name: 'electrode-lab/debian12', provider: 'libvirt', version: '0' }]);
  });
});

describe('command sequence (recording runner)', () => {
  it('down destroys through vagrant, then sweeps only this lab\'s domains, network and volumes', async () => {
    const plan = vmPlan(3, { name: 'rec' });
    const paths = new LabPaths(join(tmp, 'home'), plan.lab);
    mkdirSync(paths.vagrantDir, { recursive: true });
    writeFileSync(join(paths.vagrantDir, 'Vagrantfile'), '# stub\n');
    const runner = new RecordingRunner((argv) => {
      const line = argv.join(' ');
      if (line.endsWith(' list --all --name')) return { stdout: 'el-rec-replica1\nel-other-replica0\n' };
      if (line.endsWith('net-list --all --name')) return { stdout: 'default\nel-rec\nel-other\nvagrant-libvirt\n' };
      if (line.endsWith('vol-list default')) return { stdout: ' el-rec-replica1.img   /var/lib/libvirt/images/el-rec-replica1.img\n el-other-replica0.img  /x\n box_image.img /y\n' };
      return {};
    });
    await new VagrantProvider({}).down(plan, { runner, paths, progress: quiet });
    const lines = runner.lines();
    expect(lines[0]).toBe('vagrant destroy -f');
    expect(lines).toContain('virsh -q -c qemu:///system destroy el-rec-replica1');
    expect(lines).toContain('virsh -q -c qemu:///system undefine el-rec-replica1 --remove-all-storage --nvram');
    expect(lines).toContain('virsh -q -c qemu:///system net-destroy el-rec');
    expect(lines).toContain('virsh -q -c qemu:///system net-undefine el-rec');
    expect(lines).toContain('virsh -q -c qemu:///system vol-delete --pool default el-rec-replica1.img');
    // nothing of another lab, nor the shared management network or base box image
    expect(lines.filter((l) => /el-other|vagrant-libvirt|box_image/.test(l))).toEqual([]);
  });

  it('up under --dry-run writes the Vagrantfile and prints one `vagrant up --no-parallel` per VM, in plan order', async () => {
    const plan = vmPlan(3, { name: 'dry' });
    const paths = new LabPaths(join(tmp, 'home'), plan.lab);
    const printed: string[] = [];
    await new VagrantProvider({ ELECTRODE_LAB_VM_BUILD: 'host' }).up(plan, { runner: new DryRunRunner((l) => printed.push(l)), paths, progress: quiet });
    expect(printed).toEqual(plan.nodes.map((n) => `vagrant up --no-parallel --no-provision --provider libvirt ${n.name}`));
  });

  it('checkKernelPins reports only drifted VMs (dry-run: none)', async () => {
    const plan = vmPlan(3, { name: 'kp', kernel: '5.8.0-050800-generic' });
    const paths = new LabPaths(join(tmp, 'home'), plan.lab);
    const printed: string[] = [];
    expect(await checkKernelPins(plan, { runner: new DryRunRunner((l) => printed.push(l)), paths, progress: quiet })).toEqual([]);
    expect(printed).toHaveLength(plan.nodes.length);
    expect(printed[0]).toBe("vagrant ssh replica0 -c 'sudo -n -- uname -r'");
  });

  it('refuses a build mode it does not know, naming the choices', async () => {
    await expect(new VagrantProvider({ ELECTRODE_LAB_VM_BUILD: 'cloud' }).up(vmPlan(3), { runner: new DryRunRunner(() => undefined), paths: new LabPaths(tmp, 'x'), progress: quiet })).rejects.toThrow(/use guest .* or host/);
  });
});
