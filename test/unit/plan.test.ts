/** spec -> plan: determinism, uniqueness, provider choice, names that fit the kernel's limits. */
import { describe, expect, it } from 'vitest';
import { HostFacts, NO_FACTS, planFromInputs, planLab, nodeMac } from '../../src/core/plan.js';
import { planJson } from '../../src/core/render.js';
import { normalizeSpec, SpecInput } from '../../src/core/spec.js';

function plan(input: SpecInput, facts: HostFacts = NO_FACTS) {
  return planFromInputs([input], facts);
}

describe('plan determinism', () => {
  it.each([3, 5, 7, 15])('same spec -> byte-identical plan JSON (%i replicas)', (n) => {
    const a = planJson(plan({ replicas: n, name: 'det' }));
    const b = planJson(plan({ replicas: n, name: 'det' }));
    expect(a).toBe(b);
    // the same spec reached through a file + flags split plans the same
    const c = planJson(planFromInputs([{ name: 'det', replicas: 3 }, { replicas: n }]));
    expect(c).toBe(a);
  });
  it('a different lab name gives different MACs but the same addresses', () => {
    const a = plan({ name: 'alpha' });
    const b = plan({ name: 'beta' });
    expect(a.nodes.map((n) => n.ip)).toEqual(b.nodes.map((n) => n.ip));
    expect(a.nodes.map((n) => n.mac)).not.toEqual(b.nodes.map((n) => n.mac));
  });
});

describe('plan contents', () => {
  const p = plan({ replicas: 15, clients: 8, subnet: '10.9.0.0/24', name: 'sixteen-chars-ab' });

  it('nodes: replica0..14 then client0..7, with 2f+1 arithmetic', () => {
    expect(p.nodes.map((n) => n.name)).toEqual([...Array.from({ length: 15 }, (_, i) => `replica${i}`), ...Array.from({ length: 8 }, (_, i) => `client${i}`)]);
    expect(p.cluster).toEqual({ n: 15, f: 7, quorum: 8 });
  });
  it('IPs, MACs and ports are unique; MACs are locally administered unicast', () => {
    for (const key of ['ip', 'mac', 'port', 'netns', 'switchIf', 'pinDir'] as const) {
      expect(new Set(p.nodes.map((n) => n[key])).size).toBe(p.nodes.length);
    }
    for (const n of p.nodes) {
      expect(n.mac).toMatch(/^02:4c(:[0-9a-f]{2}){4}$/);
      expect(parseInt(n.mac.slice(0, 2), 16) & 3).toBe(2);
    }
    expect(nodeMac('x', 'replica', 3)).toBe(nodeMac('x', 'replica', 3));
  });
  it('ports: replica i = base+i, client j = base+100+j', () => {
    expect(p.nodes.filter((n) => n.role === 'replica').map((n) => n.port)).toEqual(Array.from({ length: 15 }, (_, i) => 51000 + i));
    expect(p.nodes.filter((n) => n.role === 'client').map((n) => n.port)).toEqual(Array.from({ length: 8 }, (_, j) => 51100 + j));
  });
  it('interface names fit IFNAMSIZ (15) even for the longest names', () => {
    for (const n of p.nodes) {
      expect(n.switchIf.length).toBeLessThanOrEqual(15);
      expect(n.ifname.length).toBeLessThanOrEqual(15);
    }
    expect(p.network.bridge.length).toBeLessThanOrEqual(15);
  });
  it('namespaces and pins carry the lab name, so labs never collide', () => {
    for (const n of p.nodes) {
      expect(n.netns).toBe(`el-sixteen-chars-ab-${n.name}`);
      expect(n.pinDir).toBe(`/sys/fs/bpf/electrode-lab/sixteen-chars-ab/${n.name}`);
    }
    expect(p.network.switchNs).toBe('el-sixteen-chars-ab-sw');
  });
});

describe('provider and VM driver choice', () => {
  it('without --provider: vagrant when vagrant-libvirt is installed, else netns, with the reason', () => {
    const s = normalizeSpec({}).spec!;
    const v = planLab(s, { ...NO_FACTS, vagrantAvailable: true }).plan!;
    expect(v.provider).toBe('vagrant');
    expect(v.providerReason).toMatch(/vagrant-libvirt are installed/);
    const n = planLab(s, NO_FACTS).plan!;
    expect(n.provider).toBe('netns');
    expect(n.providerReason).toMatch(/apt-get install vagrant vagrant-libvirt/);
  });
  it('an explicit --provider wins over the facts', () => {
    const p = plan({ provider: 'netns' }, { ...NO_FACTS, vagrantAvailable: true });
    expect(p.provider).toBe('netns');
    expect(p.providerReason).toBe('chosen with --provider');
  });
  it('vm.driver auto -> qemu unless kvm is proven usable; queues = 2 x cpus', () => {
    expect(plan({ vm: { cpus: 3 } }).vm).toMatchObject({ driver: 'qemu', queues: 6 });
    expect(plan({}, { ...NO_FACTS, kvmUsable: true }).vm.driver).toBe('kvm');
    expect(plan({ vm: { driver: 'qemu' } }, { ...NO_FACTS, kvmUsable: true }).vm.driver).toBe('qemu');
  });
});
