/**
 * Tier 1: plan -> Vagrantfile against golden files, and the queue arithmetic.
 * UPDATE_GOLDEN=1 rewrites the golden files (review the diff before committing).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planFromInputs, xdpQueues } from '../../src/core/plan.js';
import { vmPlan } from '../helpers/vagrant.helpers.js';
import { renderVagrantfile } from '../../src/providers/vagrantfile.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');

describe('renderVagrantfile', () => {
  for (const n of [3, 5, 7, 15]) {
    it(`matches vagrant-${n}.golden for ${n} replicas`, () => {
      const plan = vmPlan(n);
      const text = renderVagrantfile(plan);
      const golden = join(fixtures, `vagrant-${n}.golden`);
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, text);
      expect(existsSync(golden), `${golden} missing: run with UPDATE_GOLDEN=1`).toBe(true);
      expect(text).toBe(readFileSync(golden, 'utf8'));
      // one VM per plan node, each with the plan's IP and MAC, nothing invented
      expect(text.match(/config\.vm\.define/g)).toHaveLength(plan.nodes.length);
      for (const node of plan.nodes) {
        expect(text).toContain(`ip: "${node.ip}"`);
        expect(text).toContain(`mac: "${node.mac}"`);
      }
    });
  }

  it('puts queues, MTU and the private network on every NIC, never at provider level', () => {
    const plan = vmPlan(3, { cpus: 3, mtu: 1500 });
    const text = renderVagrantfile(plan);
    expect(text.match(/libvirt__driver_queues: 6/g)).toHaveLength(plan.nodes.length);
    expect(text.match(/libvirt__mtu: 1500/g)).toHaveLength(plan.nodes.length);
    expect(text.match(/libvirt__dhcp_enabled: false/g)).toHaveLength(plan.nodes.length);
    expect(text.match(/libvirt__forward_mode: "none"/g)).toHaveLength(plan.nodes.length);
    expect(text).not.toMatch(/lv\.driver_queues/);
    expect(text).toContain('lv.driver = "qemu"');
  });

  it('lets the spec choose kvm', () => {
    const plan = planFromInputs([{ name: 'k', provider: 'vagrant', vm: { driver: 'kvm' } }]);
    expect(renderVagrantfile(plan)).toContain('lv.driver = "kvm"');
  });
});

describe('queue arithmetic', () => {
  it('gives virtio-net twice the vCPUs so all pairs stay active with XDP attached', () => {
    for (const cpus of [1, 2, 4, 8]) {
      const q = xdpQueues(cpus);
      expect(q).toBe(2 * cpus);
      // virtio_net's rule: active pairs + vCPUs (one XDP TX ring each) <= max pairs
      expect(cpus + cpus).toBeLessThanOrEqual(q);
      expect(vmPlan(3, { cpus }).vm.queues).toBe(q);
    }
  });
});
