/** hosts provider: the inventory format, every validation rule, and the adoption of machine facts. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiagnosticsError } from '../../src/core/diagnostics.js';
import { HostNicFacts, nicFactsFromIpAddr, normalizeMac, parseIpJson } from '../../src/providers/hosts/facts.js';
import {
  DEFAULT_TUNING,
  hostFactsToNodes,
  Inventory,
  InventoryInput,
  inventoryFromText,
  parseInventory,
  validateInventory,
} from '../../src/providers/hosts/inventory.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'hosts');

/** A valid 3+1 inventory; tests change one thing at a time. */
function base(): InventoryInput & { nodes: NonNullable<InventoryInput['nodes']> } {
  return {
    lab: 'cl3',
    nic: { name: 'eth1' },
    nodes: [{ ssh: { host: 'h0' } }, { ssh: { host: 'h1' } }, { ssh: { host: 'h2' } }, { ssh: { host: 'h3' } }],
  };
}

function codes(inv: unknown): string[] {
  return validateInventory(inv as InventoryInput).diagnostics.map((d) => d.code);
}

function diag(inv: unknown, code: string) {
  const d = validateInventory(inv as InventoryInput).diagnostics.find((x) => x.code === code);
  if (!d) throw new Error(`no ${code} in ${JSON.stringify(validateInventory(inv as InventoryInput).diagnostics)}`);
  return d;
}

function valid(inv: unknown): Inventory {
  const r = validateInventory(inv as InventoryInput);
  if (!r.inventory) throw new Error(JSON.stringify(r.diagnostics));
  return r.inventory;
}

function withNode(i: number, patch: Record<string, unknown>) {
  const b = base();
  b.nodes[i] = { ...b.nodes[i], ...patch };
  return b;
}

describe('the example inventory (test/fixtures/hosts/inventory-3.yaml)', () => {
  const inv = inventoryFromText(readFileSync(join(FIX, 'inventory-3.yaml'), 'utf8'), 'inventory-3.yaml');

  it('normalizes to exact nodes: defaults merged, roles, indices, MACs lower-case, jump host parsed', () => {
    expect(inv).toEqual({
      lab: 'cl3',
      basePort: 51000,
      mtu: 3000,
      cluster: { n: 3, f: 1, quorum: 2 },
      tuning: { coalescing: 'off', queues: 1, irqbalance: 'off', irqAffinity: 'pin', irqCpu: 0 },
      nodes: [
        { name: 'replica0', role: 'replica', index: 0, entry: 0, ssh: { host: 'pc417.utah.cloudlab.us', port: 22, user: 'alice', key: '~/.ssh/id_ed25519' }, nic: { name: 'ens1f1np1' }, ip: '10.10.1.1/24' },
        { name: 'replica1', role: 'replica', index: 1, entry: 1, ssh: { host: 'pc421.utah.cloudlab.us', port: 22, user: 'alice', key: '~/.ssh/id_ed25519' }, nic: { name: 'ens1f1np1', mac: '1c:34:da:41:c9:12' }, ip: '10.10.1.2/24' },
        { name: 'replica2', role: 'replica', index: 2, entry: 2, ssh: { host: 'pc433.utah.cloudlab.us', port: 22, user: 'alice', key: '~/.ssh/id_ed25519' }, nic: { name: 'ens1f1np1' } },
        {
          name: 'client0',
          role: 'client',
          index: 0,
          entry: 3,
          ssh: { host: 'pc402.utah.cloudlab.us', port: 22, user: 'alice', key: '~/.ssh/id_ed25519', jumpHost: { host: 'users.emulab.net', port: 22, user: 'alice' } },
          nic: { name: 'ens1f1np1', mac: '1c:34:da:41:ca:02' },
        },
      ],
    });
  });
  it('the same inventory as JSON validates to the same thing', () => {
    const asJson = JSON.stringify(parseInventory(readFileSync(join(FIX, 'inventory-3.yaml'), 'utf8'), 'x'));
    expect(inventoryFromText(asJson, 'inventory.json')).toEqual(inv);
  });
});

describe('defaults and inference', () => {
  it('no roles: all replicas but the last node, which is the client; lab/port/user/port/tuning defaults', () => {
    const inv = valid(base());
    expect(inv.nodes.map((n) => [n.name, n.role, n.index])).toEqual([
      ['replica0', 'replica', 0],
      ['replica1', 'replica', 1],
      ['replica2', 'replica', 2],
      ['client0', 'client', 0],
    ]);
    expect(inv.basePort).toBe(51000);
    expect(inv.mtu).toBeUndefined();
    expect(inv.nodes[0]!.ssh).toEqual({ host: 'h0', port: 22, user: 'root' });
    expect(inv.tuning).toEqual(DEFAULT_TUNING);
    expect(valid({ nodes: base().nodes, nic: { name: 'eth1' } }).lab).toBe('lab');
  });
  it('replicas: N takes the first N unroled nodes in order, the rest are clients', () => {
    const b = base();
    b.nodes.push({ ssh: { host: 'h4' } }, { ssh: { host: 'h5' } });
    const inv = valid({ ...b, replicas: 3 });
    expect(inv.nodes.map((n) => `${n.name}@${n.ssh.host}`)).toEqual(['replica0@h0', 'replica1@h1', 'replica2@h2', 'client0@h3', 'client1@h4', 'client2@h5']);
    expect(inv.cluster).toEqual({ n: 3, f: 1, quorum: 2 });
  });
  it('explicit roles win and output is replicas (by index) then clients, whatever the file order', () => {
    const b = base();
    b.nodes[0]!.role = 'client';
    const inv = valid(b);
    // h0 is the client; with an explicit client, every unroled node is a replica
    expect(inv.nodes.map((n) => `${n.name}@${n.ssh.host}#${n.entry}`)).toEqual(['replica0@h1#1', 'replica1@h2#2', 'replica2@h3#3', 'client0@h0#0']);
  });
  it('aliases: name for lab, basePort for port (equal values are fine)', () => {
    const inv = valid({ ...base(), lab: undefined, name: 'alias', basePort: 52000 });
    expect([inv.lab, inv.basePort]).toEqual(['alias', 52000]);
    expect(valid({ ...base(), port: 52000, basePort: 52000 }).basePort).toBe(52000);
  });
  it('tuning.mtu alone sets the lab MTU; keep values are kept', () => {
    const inv = valid({ ...base(), tuning: { mtu: 3000, coalescing: 'keep', queues: 'keep', irqbalance: 'keep', irqAffinity: 'spread', irqCpu: 2 } });
    expect(inv.mtu).toBe(3000);
    expect(inv.tuning).toEqual({ coalescing: 'keep', queues: 'keep', irqbalance: 'keep', irqAffinity: 'spread', irqCpu: 2 });
  });
  it('jump hosts: [user@]host[:port] strings and mappings', () => {
    expect(valid(withNode(0, { ssh: { host: 'h0', jumpHost: 'gw' } })).nodes[0]!.ssh.jumpHost).toEqual({ host: 'gw', port: 22 });
    expect(valid(withNode(0, { ssh: { host: 'h0', jumpHost: 'bob@gw.example.org:2222' } })).nodes[0]!.ssh.jumpHost).toEqual({ host: 'gw.example.org', port: 2222, user: 'bob' });
    expect(valid(withNode(0, { ssh: { host: 'h0', jumpHost: { host: 'gw', port: 2200 } } })).nodes[0]!.ssh.jumpHost).toEqual({ host: 'gw', port: 2200 });
  });
  it('node ssh fields override the top-level defaults', () => {
    const inv = valid({ ...withNode(1, { ssh: { host: 'h1', user: 'bob', port: 2222 } }), ssh: { user: 'alice', key: 'k' } });
    expect(inv.nodes[0]!.ssh).toEqual({ host: 'h0', port: 22, user: 'alice', key: 'k' });
    expect(inv.nodes[1]!.ssh).toEqual({ host: 'h1', port: 2222, user: 'bob', key: 'k' });
  });
  it('a node given only a MAC needs no nic.name; the MAC is normalized', () => {
    const b = base();
    delete b.nic;
    b.nodes.forEach((n, i) => (n.nic = { mac: `AA-BB-CC-00-00-0${i}` }));
    expect(valid(b).nodes.map((n) => n.nic)).toEqual([0, 1, 2, 3].map((i) => ({ mac: `aa:bb:cc:00:00:0${i}` })));
  });
});

describe('parseInventory', () => {
  const err = (text: string) => {
    try {
      parseInventory(text, 'inv.yaml');
    } catch (e) {
      if (e instanceof DiagnosticsError) return e.diagnostics;
      throw e;
    }
    throw new Error('expected a DiagnosticsError');
  };
  it('INV_SYNTAX for broken YAML, with the file as subject', () => {
    expect(err('nodes: [\n')[0]).toMatchObject({ code: 'INV_SYNTAX', subject: 'inv.yaml' });
  });
  it.each(['', '- a\n- b\n', '42\n'])('INV_NOT_MAPPING for %j', (text) => {
    expect(err(text)[0]!.code).toBe('INV_NOT_MAPPING');
  });
  it('inventoryFromText throws ALL problems, prefixed with the file name', () => {
    try {
      inventoryFromText('lab: Bad\nnodes: []\ncolour: red\n', 'inv.yaml');
      throw new Error('expected a throw');
    } catch (e) {
      expect(e).toBeInstanceOf(DiagnosticsError);
      const ds = (e as DiagnosticsError).diagnostics;
      expect(ds.map((d) => d.code).sort()).toEqual(['INV_BAD_NAME', 'INV_NO_NODES', 'INV_UNKNOWN_FIELD']);
      expect(ds.find((d) => d.code === 'INV_UNKNOWN_FIELD')!.subject).toBe('inv.yaml: colour');
    }
  });
});

describe('validation rules (each with its code and subject)', () => {
  it('the base inventory is valid', () => {
    expect(codes(base())).toEqual([]);
  });

  it('INV_NOT_MAPPING for a non-mapping', () => {
    expect(codes([1, 2])).toEqual(['INV_NOT_MAPPING']);
  });
  it('INV_UNKNOWN_FIELD at every level, listing the known fields', () => {
    expect(diag({ ...base(), colour: 1 }, 'INV_UNKNOWN_FIELD')).toMatchObject({ subject: 'colour', hint: expect.stringContaining('lab, name, port, basePort, mtu, replicas, ssh, nic, nodes, tuning') });
    expect(diag(withNode(1, { hostname: 'x' }), 'INV_UNKNOWN_FIELD')).toMatchObject({ subject: 'nodes[1].hostname', hint: expect.stringContaining('name, role, ssh, nic, ip, mac') });
    expect(diag(withNode(1, { ssh: { host: 'h1', identity: 'k' } }), 'INV_UNKNOWN_FIELD')).toMatchObject({ subject: 'nodes[1].ssh.identity', hint: expect.stringContaining('host, port, user, key, jumpHost') });
    expect(diag(withNode(1, { nic: { ifname: 'x' } }), 'INV_UNKNOWN_FIELD')).toMatchObject({ subject: 'nodes[1].nic.ifname', hint: expect.stringContaining('name, mac') });
    expect(diag({ ...base(), tuning: { coalesce: 'off' } }, 'INV_UNKNOWN_FIELD')).toMatchObject({ subject: 'tuning.coalesce', hint: expect.stringContaining('mtu, coalescing, queues, irqbalance, irqAffinity, irqCpu') });
    expect(diag({ ...base(), ssh: { host: 'x' } }, 'INV_UNKNOWN_FIELD')).toMatchObject({ subject: 'ssh.host' });
    expect(diag({ ...base(), nic: { mac: 'aa:bb:cc:dd:ee:ff' } }, 'INV_UNKNOWN_FIELD')).toMatchObject({ subject: 'nic.mac' });
    expect(diag(withNode(0, { ssh: { host: 'h0', jumpHost: { host: 'gw', via: 'x' } } }), 'INV_UNKNOWN_FIELD')).toMatchObject({ subject: 'nodes[0].ssh.jumpHost.via' });
  });
  it('collects ALL problems of an inventory at once', () => {
    const b = base();
    b.nodes[0] = { ssh: {}, nic: { mac: 'zz' } };
    b.nodes[1] = { ssh: { host: 'h1', port: 0 }, ip: '10.0.0.0/24' };
    expect(codes({ ...b, lab: 'UPPER', mtu: 9000, tuning: { queues: 0 } }).sort()).toEqual(
      ['INV_BAD_IP', 'INV_BAD_MAC', 'INV_BAD_NAME', 'INV_BAD_PORT', 'INV_MTU_TOO_LARGE_FOR_XDP', 'INV_NO_SSH_HOST', 'INV_TUNING_VALUE'].sort(),
    );
  });

  it.each([
    ['UPPER'],
    ['a-very-long-lab-name-indeed'],
    ['trailing-'],
    [7],
  ])('INV_BAD_NAME lab=%j', (lab) => {
    expect(diag({ ...base(), lab }, 'INV_BAD_NAME').subject).toBe(`lab=${lab}`);
  });
  it('INV_CONFLICT when aliases disagree, and for mtu vs tuning.mtu, mac vs nic.mac', () => {
    expect(diag({ ...base(), lab: 'a', name: 'b' }, 'INV_CONFLICT').subject).toBe('lab=a name=b');
    expect(diag({ ...base(), port: 51000, basePort: 52000 }, 'INV_CONFLICT').subject).toBe('port=51000 basePort=52000');
    expect(diag({ ...base(), mtu: 1500, tuning: { mtu: 3000 } }, 'INV_CONFLICT').subject).toBe('mtu=1500 tuning.mtu=3000');
    expect(diag(withNode(2, { mac: '02:00:00:00:00:01', nic: { mac: '02:00:00:00:00:02' } }), 'INV_CONFLICT').subject).toBe('nodes[2].mac=02:00:00:00:00:01 nodes[2].nic.mac=02:00:00:00:00:02');
    expect(codes(withNode(2, { mac: '02:00:00:00:00:01', nic: { mac: '02-00-00-00-00-01' } }))).toEqual([]);
  });
  it.each([
    [{ port: 80 }, 'port=80'],
    [{ port: 70000 }, 'port=70000'],
    [{ basePort: '51000' }, 'port=51000'],
    [{ port: 65500 }, 'port=65500'], // client ports base+100.. would not fit
  ])('INV_BAD_PORT %j', (patch, subject) => {
    expect(diag({ ...base(), ...patch }, 'INV_BAD_PORT').subject).toBe(subject);
  });
  it.each([
    [{ mtu: 9000 }, 'INV_MTU_TOO_LARGE_FOR_XDP', 'mtu=9000'],
    [{ mtu: 3501 }, 'INV_MTU_TOO_LARGE_FOR_XDP', 'mtu=3501'],
    [{ tuning: { mtu: 9000 } }, 'INV_MTU_TOO_LARGE_FOR_XDP', 'tuning.mtu=9000'],
    [{ mtu: 500 }, 'INV_MTU_TOO_SMALL', 'mtu=500'],
    [{ mtu: '1500' }, 'INV_TYPE', 'mtu=1500'],
    [{ replicas: 'three' }, 'INV_TYPE', 'replicas=three'],
    [{ tuning: 'off' }, 'INV_TYPE', 'tuning'],
    [{ ssh: 'alice' }, 'INV_TYPE', 'ssh'],
    [{ nic: 'eth1' }, 'INV_TYPE', 'nic'],
  ])('%j -> %s', (patch, code, subject) => {
    expect(diag({ ...base(), ...patch }, code).subject).toBe(subject);
  });
  it.each([
    [{ coalescing: false }, 'tuning.coalescing=false'],
    [{ coalescing: 'on' }, 'tuning.coalescing=on'],
    [{ irqbalance: 'stop' }, 'tuning.irqbalance=stop'],
    [{ irqAffinity: 'cpu0' }, 'tuning.irqAffinity=cpu0'],
    [{ queues: 0 }, 'tuning.queues=0'],
    [{ queues: 1.5 }, 'tuning.queues=1.5'],
    [{ queues: 'all' }, 'tuning.queues=all'],
    [{ irqCpu: -1 }, 'tuning.irqCpu=-1'],
  ])('INV_TUNING_VALUE %j', (tuning, subject) => {
    expect(diag({ ...base(), tuning }, 'INV_TUNING_VALUE').subject).toBe(subject);
  });

  it('INV_NO_NODES for a missing or empty list', () => {
    expect(codes({ lab: 'x' })).toEqual(['INV_NO_NODES']);
    expect(codes({ lab: 'x', nodes: [] })).toEqual(['INV_NO_NODES']);
    expect(codes({ lab: 'x', nodes: 'h0,h1' })).toEqual(['INV_NO_NODES']);
  });
  it('INV_TYPE for a node that is not a mapping, or ssh/nic that are not', () => {
    const b = base();
    (b.nodes as unknown[])[3] = 'h3';
    expect(diag(b, 'INV_TYPE').subject).toBe('nodes[3]');
    expect(diag(withNode(1, { ssh: 'h1' }), 'INV_TYPE').subject).toBe('nodes[1].ssh');
    expect(diag(withNode(1, { nic: 'eth1' }), 'INV_TYPE').subject).toBe('nodes[1].nic');
    expect(diag(withNode(1, { ssh: { host: 'h1', key: '' } }), 'INV_TYPE').subject).toBe('nodes[1].ssh.key=');
  });
  it('INV_NO_SSH_HOST nodes[2]', () => {
    expect(diag(withNode(2, { ssh: { user: 'x' } }), 'INV_NO_SSH_HOST').subject).toBe('nodes[2].ssh.host');
    expect(diag(withNode(2, { ssh: undefined }), 'INV_NO_SSH_HOST').subject).toBe('nodes[2].ssh.host');
  });
  it.each([
    ['alice@pc1', 'write ssh: { host: pc1, user: alice }'],
    ['pc1:2222', 'write ssh: { host: pc1, port: 2222 }'],
    ['pc 1', 'e.g. pc417.utah.cloudlab.us or 192.168.1.20'],
  ])('INV_SSH_HOST %s, with a hint that fixes it', (host, hint) => {
    expect(diag(withNode(0, { ssh: { host } }), 'INV_SSH_HOST')).toMatchObject({ subject: `nodes[0].ssh.host=${host}`, hint });
  });
  it('ssh hosts may be IPv4/IPv6 literals and FQDNs', () => {
    expect(codes(withNode(0, { ssh: { host: '192.168.1.20' } }))).toEqual([]);
    expect(codes(withNode(0, { ssh: { host: 'fe80::1' } }))).toEqual([]);
    expect(codes(withNode(0, { ssh: { host: 'pc417.utah.cloudlab.us.' } }))).toEqual([]);
  });
  it('INV_BAD_PORT / INV_BAD_USER for ssh, with the field that held the bad value', () => {
    expect(diag(withNode(1, { ssh: { host: 'h1', port: 65536 } }), 'INV_BAD_PORT').subject).toBe('nodes[1].ssh.port=65536');
    expect(diag({ ...base(), ssh: { port: 'x' } }, 'INV_BAD_PORT').subject).toBe('ssh.port=x');
    expect(diag(withNode(1, { ssh: { host: 'h1', user: 'a b' } }), 'INV_BAD_USER').subject).toBe('nodes[1].ssh.user=a b');
  });
  it.each(['a@@b', 'host:port', 'x y'])('INV_BAD_JUMP_HOST %s', (jumpHost) => {
    expect(codes(withNode(0, { ssh: { host: 'h0', jumpHost } }))).toContain('INV_BAD_JUMP_HOST');
  });
  it('INV_BAD_JUMP_HOST for a non-string, non-mapping; INV_NO_SSH_HOST for a mapping without host', () => {
    expect(diag(withNode(0, { ssh: { host: 'h0', jumpHost: 22 } }), 'INV_BAD_JUMP_HOST').subject).toBe('nodes[0].ssh.jumpHost=22');
    expect(diag(withNode(0, { ssh: { host: 'h0', jumpHost: { port: 22 } } }), 'INV_NO_SSH_HOST').subject).toBe('nodes[0].ssh.jumpHost.host');
  });
  it('INV_NO_NIC nodes[2]: give nic.name or nic.mac', () => {
    const b = base();
    delete b.nic;
    b.nodes.forEach((n, i) => i !== 2 && (n.nic = { name: 'eth1' }));
    expect(diag(b, 'INV_NO_NIC')).toMatchObject({ subject: 'nodes[2]', message: 'give nic.name or nic.mac' });
    expect(codes(b)).toEqual(['INV_NO_NIC']);
  });
  it.each([
    ['eth1/2'],
    ['a-name-longer-than-15'],
    ['eth 1'],
    [''],
  ])('INV_BAD_IFNAME %j', (name) => {
    expect(diag(withNode(1, { nic: { name } }), 'INV_BAD_IFNAME').subject).toBe(`nodes[1].nic.name=${name}`);
  });
  it('INV_BAD_IFNAME on the top-level default says so', () => {
    expect(diag({ ...base(), nic: { name: 'bad/name' } }, 'INV_BAD_IFNAME').subject).toBe('nic.name=bad/name');
  });
  it.each([
    ['aa:bb:cc:dd:ee', 'not a MAC address'],
    ['aa:bb:cc:dd:ee:gg', 'not a MAC address'],
    ['aa:bb-cc:dd:ee:ff', 'not a MAC address'],
    ['01:00:5e:00:00:01', 'a NIC has a unicast'],
    ['00:00:00:00:00:00', 'a NIC has a unicast'],
  ])('INV_BAD_MAC %s', (mac, message) => {
    expect(diag(withNode(3, { nic: { mac } }), 'INV_BAD_MAC').message).toContain(message);
    expect(codes(withNode(3, { mac }))).toContain('INV_BAD_MAC');
  });
  it.each([
    ['10.10.1.1', 'must be an IPv4 address with its prefix length'],
    ['10.10.1.256/24', 'must be an IPv4 address with its prefix length'],
    ['10.10.1.1/33', 'must be an IPv4 address with its prefix length'],
    ['10.10.1.1/31', 'the lab subnet must be a /8 to /30'],
    ['10.10.1.1/4', 'the lab subnet must be a /8 to /30'],
    ['10.10.1.0/24', 'is the network address'],
    ['10.10.1.255/24', 'is the broadcast address'],
  ])('INV_BAD_IP %s', (ip, message) => {
    expect(diag(withNode(0, { ip }), 'INV_BAD_IP')).toMatchObject({ subject: `nodes[0].ip=${ip}`, message: expect.stringContaining(message) });
  });
  it('INV_BAD_NODE_NAME, INV_BAD_ROLE', () => {
    expect(diag(withNode(0, { name: 'Replica_0' }), 'INV_BAD_NODE_NAME').subject).toBe('nodes[0].name=Replica_0');
    expect(diag(withNode(0, { role: 'leader' }), 'INV_BAD_ROLE').subject).toBe('nodes[0].role=leader');
  });

  it('INV_DUP_NAME: two given names, or a given name that is another node\'s default', () => {
    const b = base();
    b.nodes[0]!.name = 'alpha';
    b.nodes[2]!.name = 'alpha';
    expect(diag(b, 'INV_DUP_NAME')).toMatchObject({ subject: 'nodes[2]', message: 'same name as nodes[0] (alpha)' });
    // nodes[3] is named replica0 but is the client; nodes[0] gets the default replica0
    expect(diag(withNode(3, { name: 'replica0' }), 'INV_DUP_NAME').message).toContain('replica0');
  });
  it('INV_DUP_SSH_HOST: the same host and port (case-insensitive); other ports or jump hosts are other machines', () => {
    expect(diag(withNode(2, { ssh: { host: 'H0' } }), 'INV_DUP_SSH_HOST')).toMatchObject({ subject: 'nodes[2]', message: 'same SSH host as nodes[0] (h0:22)' });
    expect(codes(withNode(2, { ssh: { host: 'h0', port: 2222 } }))).toEqual([]);
    expect(codes(withNode(2, { ssh: { host: 'h0', jumpHost: 'gw' } }))).toEqual([]);
  });
  it('INV_DUP_IP (the address, whatever the prefix written) and INV_DUP_MAC', () => {
    const ips = base();
    ips.nodes[0]!.ip = '10.10.1.1/24';
    ips.nodes[3]!.ip = '10.10.1.1/24';
    expect(diag(ips, 'INV_DUP_IP')).toMatchObject({ subject: 'nodes[3]', message: 'same lab IP as nodes[0] (10.10.1.1)' });
    const macs = base();
    macs.nodes[1]!.mac = '02:00:00:00:00:01';
    macs.nodes[2]!.nic = { mac: '02:00:00:00:00:01' };
    expect(diag(macs, 'INV_DUP_MAC')).toMatchObject({ subject: 'nodes[2]', message: 'same MAC as nodes[1] (02:00:00:00:00:01)' });
  });
  it('INV_MIXED_SUBNETS names each subnet and its nodes', () => {
    const b = base();
    b.nodes[0]!.ip = '10.10.1.1/24';
    b.nodes[1]!.ip = '10.10.1.2/24';
    b.nodes[2]!.ip = '10.10.2.3/24';
    b.nodes[3]!.ip = '10.10.1.4/16';
    expect(diag(b, 'INV_MIXED_SUBNETS').message).toBe(
      'the lab addresses are in 3 subnets: 10.10.1.0/24 (nodes[0], nodes[1]); 10.10.2.0/24 (nodes[2]); 10.10.0.0/16 (nodes[3])',
    );
  });

  it('INV_EVEN_REPLICAS when the count is 2f+2, and says how to fix it', () => {
    const b = base();
    b.nodes.push({ ssh: { host: 'h4' } }); // 4 replicas + 1 client
    expect(diag(b, 'INV_EVEN_REPLICAS')).toMatchObject({ subject: 'replicas=4', message: 'Paxos needs 2f+1 replicas', hint: expect.stringContaining('use 3 or 5') });
    expect(codes({ ...b, replicas: 3 })).toEqual([]);
  });
  it('INV_REPLICAS_RANGE below 3 and above 15', () => {
    const small = base();
    small.nodes.splice(2);
    expect(diag(small, 'INV_REPLICAS_RANGE').subject).toBe('replicas=1');
    const big = { lab: 'big', nic: { name: 'eth1' }, nodes: Array.from({ length: 18 }, (_, i) => ({ ssh: { host: `h${i}` } })) };
    expect(diag(big, 'INV_REPLICAS_RANGE').subject).toBe('replicas=17');
    expect(codes({ ...big, replicas: 15 })).toEqual([]);
  });
  it('INV_NO_CLIENT when every node is a replica; INV_CLIENTS_RANGE above 8', () => {
    const b = base();
    b.nodes.forEach((n) => (n.role = 'replica'));
    b.nodes.pop();
    expect(diag(b, 'INV_NO_CLIENT').subject).toBe('nodes');
    const many = { lab: 'many', nic: { name: 'eth1' }, replicas: 3, nodes: Array.from({ length: 12 }, (_, i) => ({ ssh: { host: `h${i}` } })) };
    expect(diag(many, 'INV_CLIENTS_RANGE').subject).toBe('clients=9');
  });
  it('INV_ROLE_COUNT when replicas: N disagrees with the roles or the number of nodes', () => {
    const b = base();
    b.nodes.forEach((n, i) => i < 3 && (n.role = 'replica'));
    expect(diag({ ...b, replicas: 1 }, 'INV_ROLE_COUNT').message).toBe('3 nodes say role: replica');
    expect(diag({ ...base(), replicas: 5 }, 'INV_ROLE_COUNT').message).toBe('only 4 nodes can be replicas');
  });
});

// ---------------------------------------------------------------- facts and adoption

const inv3 = (): Inventory => valid({ ...base(), nic: undefined, nodes: base().nodes.map((n, i) => ({ ...n, nic: { name: 'eth1' }, ...(i === 1 ? { ip: '10.10.1.2/24' } : {}) })) });

function facts(over: Record<string, Partial<HostNicFacts> | undefined> = {}): Record<string, HostNicFacts | undefined> {
  const names = ['replica0', 'replica1', 'replica2', 'client0'];
  const out: Record<string, HostNicFacts | undefined> = {};
  names.forEach((n, i) => {
    const f: HostNicFacts = { ip: `10.10.1.${i + 1}/24`, mac: `1c:34:da:00:00:0${i}`, ifname: 'eth1', mtu: 1500, driver: 'mlx5_core', kernel: '5.8.0-050800-generic' };
    out[n] = n in over ? (over[n] === undefined ? undefined : ({ ...f, ...over[n] } as HostNicFacts)) : f;
  });
  return out;
}

function hostCodes(inv: Inventory, f: Record<string, HostNicFacts | undefined>): string[] {
  return hostFactsToNodes(inv, f).diagnostics.map((d) => d.code);
}

describe('hostFactsToNodes: adopting the machines\' facts', () => {
  it('adopts IPs and MACs from the machines; ports as plan.ts; network from the common subnet', () => {
    const r = hostFactsToNodes(inv3(), facts());
    expect(r.diagnostics).toEqual([]);
    expect(r.network).toEqual({ cidr: '10.10.1.0/24', netmask: '255.255.255.0', prefix: 24, mtu: 1500, basePort: 51000 });
    expect(r.cluster).toEqual({ n: 3, f: 1, quorum: 2 });
    expect(r.nodes!.map((n) => [n.name, n.ip, n.mac, n.port, n.ipSource])).toEqual([
      ['replica0', '10.10.1.1', '1c:34:da:00:00:00', 51000, 'machine'],
      ['replica1', '10.10.1.2', '1c:34:da:00:00:01', 51001, 'machine'],
      ['replica2', '10.10.1.3', '1c:34:da:00:00:02', 51002, 'machine'],
      ['client0', '10.10.1.4', '1c:34:da:00:00:03', 51100, 'machine'],
    ]);
    expect(r.nodes![0]).toMatchObject({ ifname: 'eth1', ssh: { host: 'h0', port: 22, user: 'root' }, driver: 'mlx5_core', kernel: '5.8.0-050800-generic', mtu: 1500 });
  });
  it('a stated IP the machine lacks is adopted from the inventory, marked for the provider to add', () => {
    const r = hostFactsToNodes(inv3(), facts({ replica1: { ip: undefined } }));
    expect(r.diagnostics).toEqual([]);
    expect(r.nodes![1]).toMatchObject({ ip: '10.10.1.2', ipSource: 'inventory' });
  });
  it('the inventory MTU is the lab MTU even when the machines differ (tuning sets it)', () => {
    const inv = { ...inv3(), mtu: 3000 };
    const r = hostFactsToNodes(inv, facts({ client0: { mtu: 9000 } }));
    expect(r.network!.mtu).toBe(3000);
    expect(r.nodes!.map((n) => n.mtu)).toEqual([1500, 1500, 1500, 9000]);
  });
  it('HOST_NO_FACTS names the node and its host', () => {
    expect(hostFactsToNodes(inv3(), facts({ replica2: undefined })).diagnostics).toEqual([
      expect.objectContaining({ code: 'HOST_NO_FACTS', subject: 'nodes[2] (replica2, h2)' }),
    ]);
  });
  it('HOST_MAC_MISMATCH / HOST_IFNAME_MISMATCH / HOST_IP_MISMATCH against what the inventory stated', () => {
    const inv = inv3();
    inv.nodes[0]!.nic = { name: 'eth1', mac: '1c:34:da:00:00:99' };
    const r = hostFactsToNodes(inv, facts({ replica1: { ip: '10.10.1.22/24' }, replica2: { ifname: 'eth2' } }));
    expect(r.diagnostics.map((d) => [d.code, d.subject])).toEqual([
      ['HOST_MAC_MISMATCH', 'nodes[0] (replica0, h0)'],
      ['HOST_IP_MISMATCH', 'nodes[1] (replica1, h1)'],
      ['HOST_IFNAME_MISMATCH', 'nodes[2] (replica2, h2)'],
    ]);
    expect(r.diagnostics[1]!.message).toBe('the inventory says 10.10.1.2/24, eth1 has 10.10.1.22/24');
    // the prefix is part of the fact
    expect(hostCodes(inv3(), facts({ replica1: { ip: '10.10.1.2/16' } }))).toContain('HOST_IP_MISMATCH');
  });
  it('HOST_BAD_MAC / HOST_BAD_IP / HOST_NO_IP / HOST_BAD_MTU / HOST_MTU_UNKNOWN', () => {
    expect(hostCodes(inv3(), facts({ replica0: { mac: 'nope' } }))).toEqual(['HOST_BAD_MAC']);
    expect(hostCodes(inv3(), facts({ replica0: { mac: '01:00:5e:00:00:01' } }))).toEqual(['HOST_BAD_MAC']);
    expect(hostCodes(inv3(), facts({ replica0: { ip: '10.10.1.255/24' } }))).toEqual(['HOST_BAD_IP']);
    expect(hostCodes(inv3(), facts({ replica0: { ip: 'dhcp' } }))).toEqual(['HOST_BAD_IP']);
    expect(hostCodes(inv3(), facts({ replica0: { ip: undefined } }))).toEqual(['HOST_NO_IP']);
    expect(hostCodes(inv3(), facts({ replica0: { mtu: 0 } }))).toContain('HOST_BAD_MTU');
    expect(hostCodes(inv3(), facts({ replica0: { mtu: undefined } }))).toEqual(['HOST_MTU_UNKNOWN']);
  });
  it('HOST_MIXED_SUBNETS lists the subnets (e.g. a control-network NIC picked by mistake)', () => {
    const r = hostFactsToNodes(inv3(), facts({ client0: { ip: '128.110.217.156/21' } }));
    expect(r.diagnostics.map((d) => d.code)).toEqual(['HOST_MIXED_SUBNETS']);
    expect(r.diagnostics[0]!.message).toBe('the lab NICs are in 2 subnets: 10.10.1.0/24 (replica0, replica1, replica2); 128.110.216.0/21 (client0)');
  });
  it('HOST_DUP_IP / HOST_DUP_MAC across machines (two entries reaching one machine)', () => {
    expect(hostCodes(inv3(), facts({ client0: { ip: '10.10.1.1/24', mac: '1c:34:da:00:00:00' } })).sort()).toEqual(['HOST_DUP_IP', 'HOST_DUP_MAC']);
  });
  it('HOST_MTU_MISMATCH when the machines disagree and the inventory sets none; HOST_MTU_UNSUITABLE for 9000', () => {
    expect(hostCodes(inv3(), facts({ client0: { mtu: 3000 } }))).toEqual(['HOST_MTU_MISMATCH']);
    const all9000 = facts();
    for (const f of Object.values(all9000)) f!.mtu = 9000;
    expect(hostFactsToNodes(inv3(), all9000).diagnostics).toEqual([expect.objectContaining({ code: 'HOST_MTU_UNSUITABLE', subject: 'mtu=9000' })]);
    expect(hostFactsToNodes({ ...inv3(), mtu: 3000 }, all9000).diagnostics).toEqual([]);
  });
});

describe('facts from `ip -j addr show` (a real capture, test/fixtures/hosts/ip-addr-show.json)', () => {
  const json = readFileSync(join(FIX, 'ip-addr-show.json'), 'utf8');
  it('parseIpJson reads names, MACs, MTUs and only IPv4 addresses', () => {
    expect(parseIpJson(json).map((l) => [l.ifname, l.mac, l.mtu, l.ipv4])).toEqual([
      ['lo', '00:00:00:00:00:00', 65536, ['127.0.0.1/8']],
      ['peer0', '62:d0:b2:ef:57:4e', 1500, []],
      ['lab0', '0c:42:a1:5e:7b:10', 1500, ['10.10.1.1/24']],
    ]);
    expect(parseIpJson(readFileSync(join(FIX, 'ip-link-show-lab0.json'), 'utf8'))).toEqual([{ ifname: 'lab0', mac: '0c:42:a1:5e:7b:10', mtu: 1500, operstate: 'UP', ipv4: [] }]);
  });
  it('finds the lab NIC by name or by MAC (any spelling)', () => {
    const want = { ifname: 'lab0', mac: '0c:42:a1:5e:7b:10', ip: '10.10.1.1/24', mtu: 1500 };
    expect(nicFactsFromIpAddr(json, { name: 'lab0' }, 'replica0')).toEqual({ facts: want, diagnostics: [] });
    expect(nicFactsFromIpAddr(json, { mac: '0C42A15E7B10' }, 'replica0')).toEqual({ facts: want, diagnostics: [] });
  });
  it('a NIC without IPv4 yields facts without ip (the inventory may state one)', () => {
    expect(nicFactsFromIpAddr(json, { name: 'peer0' }, 'r').facts).toEqual({ ifname: 'peer0', mac: '62:d0:b2:ef:57:4e', mtu: 1500 });
  });
  it('HOST_NIC_NOT_FOUND lists what the machine has; HOST_BAD_OUTPUT for non-JSON', () => {
    const r = nicFactsFromIpAddr(json, { name: 'lab0', mac: '02:00:00:00:00:01' }, 'nodes[0]');
    expect(r.diagnostics[0]).toMatchObject({ code: 'HOST_NIC_NOT_FOUND', subject: 'nodes[0]', message: 'no interface with name lab0 and MAC 02:00:00:00:00:01' });
    expect(r.diagnostics[0]!.hint).toContain('lab0 (0c:42:a1:5e:7b:10)');
    expect(nicFactsFromIpAddr('Object "addr" is unknown', { name: 'x' }, 'n').diagnostics[0]!.code).toBe('HOST_BAD_OUTPUT');
  });
  it('HOST_NIC_AMBIGUOUS, HOST_NIC_NO_MAC, HOST_IP_AMBIGUOUS, HOST_IP_MISMATCH', () => {
    const two = JSON.stringify([
      { ifname: 'a', address: '02:00:00:00:00:01', mtu: 1500, addr_info: [] },
      { ifname: 'b', address: '02:00:00:00:00:01', mtu: 1500, addr_info: [] },
      { ifname: 'tun0', mtu: 1500, addr_info: [] },
      {
        ifname: 'c',
        address: '02:00:00:00:00:03',
        mtu: 1500,
        addr_info: [
          { family: 'inet', local: '10.10.1.3', prefixlen: 24 },
          { family: 'inet', local: '192.168.0.3', prefixlen: 24 },
        ],
      },
    ]);
    expect(nicFactsFromIpAddr(two, { mac: '02:00:00:00:00:01' }, 'n').diagnostics[0]!.code).toBe('HOST_NIC_AMBIGUOUS');
    expect(nicFactsFromIpAddr(two, { name: 'tun0' }, 'n').diagnostics[0]!.code).toBe('HOST_NIC_NO_MAC');
    expect(nicFactsFromIpAddr(two, { name: 'c' }, 'n').diagnostics[0]!.code).toBe('HOST_IP_AMBIGUOUS');
    expect(nicFactsFromIpAddr(two, { name: 'c', ip: '10.10.1.3/24' }, 'n').facts!.ip).toBe('10.10.1.3/24');
    expect(nicFactsFromIpAddr(two, { name: 'c', ip: '10.10.1.9/24' }, 'n').diagnostics[0]!.code).toBe('HOST_IP_MISMATCH');
    // one other address: handed on, so hostFactsToNodes reports the mismatch against the inventory
    expect(nicFactsFromIpAddr(json, { name: 'lab0', ip: '10.10.1.9/24' }, 'n').facts!.ip).toBe('10.10.1.1/24');
  });
  it('normalizeMac accepts colon, dash and bare forms, rejects the rest', () => {
    expect(['EC:0D:9A:7E:24:31', 'ec-0d-9a-7e-24-31', 'ec0d9a7e2431'].map(normalizeMac)).toEqual(Array(3).fill('ec:0d:9a:7e:24:31'));
    expect(['ec:0d:9a:7e:24', 'ec0d9a7e243', 'ec:0d-9a:7e:24:31', 'gg0d9a7e2431'].map(normalizeMac)).toEqual(Array(4).fill(undefined));
  });
});
