import { planFromInputs, Plan } from '../../src/core/plan.js';

/** A vagrant-provider plan with the debian12 box, as the VM tests use. */
export function vmPlan(replicas: number, extra: { cpus?: number; mtu?: number; name?: string; kernel?: string } = {}): Plan {
  return planFromInputs([
    {
      name: extra.name ?? `v${replicas}`,
      replicas,
      provider: 'vagrant',
      mtu: extra.mtu ?? 3000,
      vm: { box: 'electrode-lab/debian12', kernel: extra.kernel ?? 'box', driver: 'qemu', cpus: extra.cpus ?? 2, memory: 768 },
    },
  ]);
}
