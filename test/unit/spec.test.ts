/** Every spec and plan diagnostic, with its code and subject; and that all problems come at once. */
import { describe, expect, it } from 'vitest';
import { DiagnosticsError } from '../../src/core/diagnostics.js';
import { HostFacts, NO_FACTS, planLab } from '../../src/core/plan.js';
import { LabSpec, normalizeSpec, parseSpecText, SpecInput } from '../../src/core/spec.js';

function specCodes(...inputs: SpecInput[]): string[] {
  return normalizeSpec(...inputs).diagnostics.map((d) => d.code);
}

function spec(input: SpecInput): LabSpec {
  const r = normalizeSpec(input);
  if (!r.spec) throw new Error(JSON.stringify(r.diagnostics));
  return r.spec;
}

function planCodes(input: SpecInput, facts: HostFacts = NO_FACTS): string[] {
  return planLab(spec(input), facts).diagnostics.map((d) => d.code);
}

function fileError(text: string): DiagnosticsError {
  try {
    parseSpecText(text, 'lab.yaml');
  } catch (e) {
    if (e instanceof DiagnosticsError) return e;
    throw e;
  }
  throw new Error('expected a DiagnosticsError');
}

describe('spec validation (normalizeSpec)', () => {
  it('defaults are valid: 3 replicas, 1 client, 10.77.0.0/24, port 51000, mtu 1500', () => {
    const s = spec({});
    expect(s).toMatchObject({ name: 'lab', replicas: 3, clients: 1, subnet: '10.77.0.0/24', basePort: 51000, mtu: 1500 });
    expect(s.provider).toBeUndefined();
  });

  it.each([
    [{ replicas: 4 }, 'SPEC_EVEN_REPLICAS'],
    [{ replicas: 14 }, 'SPEC_EVEN_REPLICAS'],
    [{ replicas: 1 }, 'SPEC_REPLICAS_RANGE'],
    [{ replicas: 17 }, 'SPEC_REPLICAS_RANGE'],
    [{ replicas: 4.5 }, 'SPEC_TYPE'],
    [{ replicas: '5' as unknown as number }, 'SPEC_TYPE'],
    [{ clients: 0 }, 'SPEC_CLIENTS_RANGE'],
    [{ clients: 9 }, 'SPEC_CLIENTS_RANGE'],
    [{ provider: 'docker' as never }, 'SPEC_UNKNOWN_PROVIDER'],
    [{ subnet: 10 as unknown as string }, 'SPEC_TYPE'],
    [{ basePort: 80 }, 'SPEC_BAD_PORT'],
    [{ basePort: 70000 }, 'SPEC_BAD_PORT'],
    [{ mtu: 9000 }, 'SPEC_MTU_TOO_LARGE_FOR_XDP'],
    [{ mtu: 3501 }, 'SPEC_MTU_TOO_LARGE_FOR_XDP'],
    [{ mtu: 500 }, 'SPEC_MTU_TOO_SMALL'],
    [{ mtu: 'big' as unknown as number }, 'SPEC_TYPE'],
    [{ maxClients: 15 }, 'SPEC_MAX_CLIENTS'],
    [{ maxClients: 2 ** 24 + 1 }, 'SPEC_MAX_CLIENTS'],
    [{ maxClients: 1.5 }, 'SPEC_MAX_CLIENTS'],
    [{ name: 'Bad_Name' }, 'SPEC_BAD_NAME'],
    [{ name: 'a-very-long-lab-name-indeed' }, 'SPEC_BAD_NAME'],
    [{ name: 'trailing-' }, 'SPEC_BAD_NAME'],
    [{ vm: { cpus: 0 } }, 'SPEC_VM_CPUS'],
    [{ vm: { memory: 128 } }, 'SPEC_VM_MEMORY'],
    [{ vm: { box: '' } }, 'SPEC_TYPE'],
    [{ vm: { kernel: 'latest' } }, 'SPEC_BAD_KERNEL'],
    [{ vm: { driver: 'xen' as never } }, 'SPEC_VM_DRIVER'],
    [{ vm: { build: 'cloud' as never } }, 'SPEC_VM_BUILD'],
  ] as [SpecInput, string][])('%j -> %s', (input, code) => {
    expect(specCodes(input)).toEqual([code]);
  });

  it('vm.build: guest or host when given; unset leaves the choice to $ELECTRODE_LAB_VM_BUILD (and out of the plan)', () => {
    expect(normalizeSpec({ vm: { build: 'host' } }).spec?.vm.build).toBe('host');
    expect(normalizeSpec({ vm: { build: 'guest' } }).spec?.vm.build).toBe('guest');
    expect(JSON.stringify(normalizeSpec({}).spec)).not.toContain('build');
  });

  it('boundaries are accepted: 15 replicas, 8 clients, mtu 3500 and 576, kernel "box"', () => {
    expect(specCodes({ replicas: 15, clients: 8, mtu: 3500 })).toEqual([]);
    expect(specCodes({ mtu: 576, vm: { kernel: 'box', driver: 'qemu' } })).toEqual([]);
  });

  it('collects every problem of the phase at once, each with a subject and a hint', () => {
    const r = normalizeSpec({ replicas: 4, mtu: 9000, provider: 'docker' as never, clients: 0 });
    expect(r.spec).toBeUndefined();
    expect(r.diagnostics.map((d) => d.code).sort()).toEqual(['SPEC_CLIENTS_RANGE', 'SPEC_EVEN_REPLICAS', 'SPEC_MTU_TOO_LARGE_FOR_XDP', 'SPEC_UNKNOWN_PROVIDER']);
    const even = r.diagnostics.find((d) => d.code === 'SPEC_EVEN_REPLICAS')!;
    expect(even.subject).toBe('replicas=4');
    expect(even.hint).toMatch(/use 3 or 5/);
    expect(r.diagnostics.find((d) => d.code === 'SPEC_UNKNOWN_PROVIDER')!.hint).toMatch(/netns, vagrant/);
    for (const d of r.diagnostics) expect(d.hint).toBeTruthy();
  });

  it('later inputs win (flags over the lab file), including nested vm fields', () => {
    const s = spec({ ...{}, ...{} });
    expect(s.replicas).toBe(3);
    const r = normalizeSpec({ replicas: 7, mtu: 3000, vm: { cpus: 4, memory: 2048 } }, { replicas: 5, vm: { cpus: 2 } });
    expect(r.spec).toMatchObject({ replicas: 5, mtu: 3000, vm: { cpus: 2, memory: 2048 } });
  });
});

describe('lab files (parseSpecText)', () => {
  it('reads YAML and JSON', () => {
    expect(parseSpecText('replicas: 5\nvm:\n  cpus: 4\n', 'a.yaml')).toEqual({ replicas: 5, vm: { cpus: 4 } });
    expect(parseSpecText('{"replicas": 7}', 'a.json')).toEqual({ replicas: 7 });
    expect(parseSpecText('', 'empty.yaml')).toEqual({});
  });
  it('SPEC_SYNTAX on unparseable text', () => {
    expect(fileError('replicas: [5\n').diagnostics.map((d) => d.code)).toEqual(['SPEC_SYNTAX']);
  });
  it('SPEC_NOT_MAPPING on a list or a scalar', () => {
    expect(fileError('- 5\n').diagnostics.map((d) => d.code)).toEqual(['SPEC_NOT_MAPPING']);
    expect(fileError('5\n').diagnostics.map((d) => d.code)).toEqual(['SPEC_NOT_MAPPING']);
  });
  it('SPEC_UNKNOWN_FIELD for every unknown top-level and vm field, all at once', () => {
    const e = fileError('replica: 5\nport: 1\nvm:\n  cpu: 2\n');
    expect(e.diagnostics.map((d) => `${d.code} ${d.subject}`)).toEqual([
      'SPEC_UNKNOWN_FIELD lab.yaml: replica',
      'SPEC_UNKNOWN_FIELD lab.yaml: port',
      'SPEC_UNKNOWN_FIELD lab.yaml: vm.cpu',
    ]);
    expect(e.diagnostics[0]!.hint).toMatch(/replicas/);
  });
  it('SPEC_TYPE when vm is not a mapping', () => {
    expect(fileError('vm: 4\n').diagnostics.map((d) => d.code)).toEqual(['SPEC_TYPE']);
  });
});

describe('plan validation (planLab)', () => {
  it('SPEC_BAD_SUBNET for a malformed CIDR', () => {
    expect(planCodes({ subnet: '10.77.0.0' })).toEqual(['SPEC_BAD_SUBNET']);
    expect(planCodes({ subnet: '10.300.0.0/24' })).toEqual(['SPEC_BAD_SUBNET']);
  });
  it('SPEC_SUBNET_TOO_SMALL names the prefix that would fit', () => {
    const d = planLab(spec({ replicas: 7, subnet: '10.1.0.0/28' }), NO_FACTS).diagnostics;
    expect(d.map((x) => x.code)).toEqual(['SPEC_SUBNET_TOO_SMALL']);
    expect(d[0]!.hint).toBe('use a /27 or larger');
    expect(planCodes({ replicas: 3, subnet: '10.1.0.0/28' })).toEqual([]);
  });
  it('SPEC_SUBNET_OVERLAP with another lab that is up', () => {
    const facts: HostFacts = { ...NO_FACTS, labsUp: [{ name: 'other', subnet: '10.77.0.0/16', provider: 'netns' }] };
    const d = planLab(spec({ name: 'mine' }), facts).diagnostics;
    expect(d.map((x) => x.code)).toEqual(['SPEC_SUBNET_OVERLAP']);
    expect(d[0]!.message).toMatch(/other/);
    expect(planCodes({ name: 'mine', subnet: '10.78.0.0/24' }, facts)).toEqual([]);
  });
  it('SPEC_SUBNET_OVERLAP with a host route only matters for vagrant (netns touches no root routes)', () => {
    const facts: HostFacts = { ...NO_FACTS, hostSubnets: ['10.77.0.0/20', '0.0.0.0/0'] };
    expect(planCodes({ provider: 'vagrant' }, facts)).toEqual(['SPEC_SUBNET_OVERLAP']);
    expect(planCodes({ provider: 'netns' }, facts)).toEqual([]);
  });
  it('SPEC_BAD_PORT when client ports would pass 65535', () => {
    expect(planCodes({ basePort: 65500 })).toEqual(['SPEC_BAD_PORT']);
  });
  it('LAB_ALREADY_UP names the command to run', () => {
    const facts: HostFacts = { ...NO_FACTS, labsUp: [{ name: 'demo', subnet: '10.77.0.0/24', provider: 'netns' }] };
    const d = planLab(spec({ name: 'demo' }), facts).diagnostics;
    expect(d.map((x) => x.code)).toEqual(['LAB_ALREADY_UP']);
    expect(d[0]!.hint).toContain('electrode-lab down --name demo');
  });
});
