/**
 * The replica's eBPF hooks against REAL pinned BPF maps (made with bpftool,
 * the same types and value sizes the loader pins): it refuses to start when
 * the pins are missing or when the kernel side has a requested fast path
 * switched off, and it keeps el_ctrl / el_fr_state current on start, as ops
 * commit, and through a view change. Needs root and a bpffs at /sys/fs/bpf.
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ASAN_BIN, LoopbackLauncher, TestCluster, buildNative, loopbackAddrs, nextPortBase, waitFor } from '../helpers/cluster.js';

const IS_ROOT = process.getuid?.() === 0;
const BPFFS = existsSync('/sys/fs/bpf') && readFileSync('/proc/mounts', 'utf8').includes(' /sys/fs/bpf bpf ');
const PIN_ROOT = `/sys/fs/bpf/el-native-test-${process.pid}`;
const scratch = mkdtempSync(join(tmpdir(), 'el-native-fp-'));
let launcher = new LoopbackLauncher();

const CTRL_SIZE = 56; // struct el_ctrl
const CONFIG_SIZE = 48; // struct el_config (the quorum token at 40)
const FR_STATE_SIZE = 16; // struct el_fr_state
const FR_BUSY_SIZE = 64; // struct el_fr_busy
const PEER_SIZE = 20; // struct el_peer
const MMAPABLE = '1024'; // BPF_F_MMAPABLE: the replica maps el_ctrl, el_config, el_fr_state, el_fr_busy
const FP_ALL = 0x7;

async function bpftool(...args: string[]): Promise<string> {
  const r = await execa('bpftool', args, { reject: false });
  if (r.exitCode !== 0) throw new Error(`bpftool ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

type Addr = { ip: string; port: number };

/**
 * Pins el_ctrl, el_config (with `enabled` and `loaded`, and the cluster identity
 * the loader writes: n, f, this index, its address), el_peers (every replica's
 * address), el_fr_state, el_fr_busy and el_fr_ring in a folder of ours: what
 * `electrode-lab attach` would pin for replica `idx` of `addrs`.
 */
async function makePins(name: string, enabled: number, addrs: Addr[], idx: number, loaded = FP_ALL): Promise<string> {
  const dir = join(PIN_ROOT, name);
  mkdirSync(dir, { recursive: true });
  const arr = (map: string, size: number, entries = 1) => bpftool('map', 'create', join(dir, map), 'type', 'array', 'key', '4', 'value', String(size), 'entries', String(entries), 'name', map, 'flags', MMAPABLE);
  await arr('el_ctrl', CTRL_SIZE);
  await arr('el_config', CONFIG_SIZE);
  await arr('el_fr_state', FR_STATE_SIZE);
  await arr('el_fr_busy', FR_BUSY_SIZE, cpus());
  await bpftool('map', 'create', join(dir, 'el_peers'), 'type', 'array', 'key', '4', 'value', String(PEER_SIZE), 'entries', String(addrs.length), 'name', 'el_peers');
  await bpftool('map', 'create', join(dir, 'el_fr_ring'), 'type', 'ringbuf', 'key', '0', 'value', '0', 'entries', '65536', 'name', 'el_fr_ring');
  const cfg = Buffer.alloc(CONFIG_SIZE);
  cfg.writeUInt32LE(addrs.length, 0); // el_config.n_replicas
  cfg.writeUInt32LE(Math.floor((addrs.length - 1) / 2), 4); // el_config.f
  cfg.writeUInt32LE(idx, 8); // el_config.my_idx
  cfg.writeUInt32LE(enabled, 12); // el_config.enabled
  cfg.writeUInt32LE(loaded, 16); // el_config.loaded
  cfg.writeUInt16BE(addrs[idx]!.port, 26); // el_config.my_port (network order)
  ipBytes(addrs[idx]!.ip).copy(cfg, 28); // el_config.my_ip (network order)
  await bpftool('map', 'update', 'pinned', join(dir, 'el_config'), 'key', ...key(0), 'value', ...[...cfg].map(String));
  for (const [i, a] of addrs.entries()) {
    const peer = Buffer.alloc(PEER_SIZE);
    ipBytes(a.ip).copy(peer, 0); // el_peer.ip
    peer.writeUInt16BE(a.port, 4); // el_peer.port
    await bpftool('map', 'update', 'pinned', join(dir, 'el_peers'), 'key', ...key(i), 'value', ...[...peer].map(String));
  }
  return dir;
}

function key(i: number): string[] {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(i, 0);
  return [...b].map(String);
}

function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

async function lookup(dir: string, map: string): Promise<Buffer> {
  const out = JSON.parse(await bpftool('-j', 'map', 'lookup', 'pinned', join(dir, map), 'key', '0', '0', '0', '0')) as { value: string[] };
  return Buffer.from(out.value.map((h) => parseInt(h, 16)));
}

/** Possible CPUs, as the kernel counts them for el_fr_busy. */
function cpus(): number {
  const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  return Math.max(...text.split(',').map((r) => Number(r.split('-').at(-1)))) + 1;
}

interface Ctrl { view: bigint; status: number; leaseNs: bigint; lastOp: bigint; commit: bigint; gen: bigint }
async function readCtrl(dir: string): Promise<Ctrl> {
  const b = await lookup(dir, 'el_ctrl');
  const vs = b.readBigUInt64LE(0);
  return { view: vs >> 2n, status: Number(vs & 3n), leaseNs: b.readBigUInt64LE(8), lastOp: b.readBigUInt64LE(16), commit: b.readBigUInt64LE(24), gen: b.readBigUInt64LE(32) };
}

/** CLOCK_MONOTONIC in ns, as bpf_ktime_get_ns() sees it. */
function monotonicNs(): bigint {
  return process.hrtime.bigint();
}

beforeAll(async () => {
  if (IS_ROOT && BPFFS) await buildNative();
}, 180_000);

afterEach(async () => {
  await launcher.cleanup();
  launcher = new LoopbackLauncher();
});

afterAll(() => {
  rmSync(PIN_ROOT, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

describe.skipIf(!IS_ROOT || !BPFFS)('replica eBPF hooks on real pinned maps', () => {
  const replicaBin = join(ASAN_BIN, 'replica');

  it('refuses to start without the pins, naming `electrode-lab attach`', async () => {
    const c = new TestCluster({ dir: join(scratch, 'nopins'), n: 3, f: 1, addrs: loopbackAddrs(3, nextPortBase()), replicaNodes: ['r0', 'r1', 'r2'], clientNode: 'c', launcher });
    const r = await execa(replicaBin, ['-c', c.configFile, '-i', '0', '--bpf-pin-dir', join(PIN_ROOT, 'absent'), '--fast-quorum'], { reject: false, timeout: 10_000 });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/el_ctrl.*electrode-lab attach/);
  });

  it('refuses --fast-broadcast / --fast-quorum / --fast-reply when el_config.enabled lacks the bit', async () => {
    const addrs = loopbackAddrs(3, nextPortBase());
    const c = new TestCluster({ dir: join(scratch, 'off'), n: 3, f: 1, addrs, replicaNodes: ['r0', 'r1', 'r2'], clientNode: 'c', launcher });
    const dir = await makePins('off', 0x2 | 0x4, addrs, 0); // quorum + reply on, broadcast OFF
    const r = await execa(replicaBin, ['-c', c.configFile, '-i', '0', '--bpf-pin-dir', dir, '--fast-broadcast'], { reject: false, timeout: 10_000 });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('electrode-lab attach --broadcast');
    const dir2 = await makePins('off2', 0x1, addrs, 1);
    const q = await execa(replicaBin, ['-c', c.configFile, '-i', '1', '--bpf-pin-dir', dir2, '--fast-reply'], { reject: false, timeout: 10_000 });
    expect(q.exitCode).toBe(1);
    expect(q.stderr).toContain('electrode-lab attach --reply');
    // a fast path this kernel's verifier rejected at attach: the message says that, not "switch it on"
    const dir3 = await makePins('off3', 0x1, addrs, 1, 0x1 | 0x2);
    const v = await execa(replicaBin, ['-c', c.configFile, '-i', '1', '--bpf-pin-dir', dir3, '--fast-reply'], { reject: false, timeout: 10_000 });
    expect(v.exitCode).toBe(1);
    expect(v.stderr).toMatch(/--fast-reply given but this kernel's verifier rejected that fast path at attach/);
    // and a bad option changes nothing: the maps are untouched
    expect((await readCtrl(dir)).gen).toBe(0n);
  });

  it('writes el_ctrl on start, as ops commit and through a view change; resets el_fr_state', async () => {
    const addrs = loopbackAddrs(3, nextPortBase());
    const dirs = await Promise.all([0, 1, 2].map((i) => makePins(`r${i}`, 0x4, addrs, i)));
    const c = new TestCluster({ dir: join(scratch, 'ctrl'), n: 3, f: 1, addrs, replicaNodes: ['r0', 'r1', 'r2'], clientNode: 'c', launcher });
    // --bpf-pin-dir without --fast-*: el_ctrl is kept current, the data path stays in user space;
    // replica 2 also drains the fast reply's ring (--fast-reply)
    await c.start((i) => ['--bpf-pin-dir', dirs[i]!, ...(i === 2 ? ['--fast-reply'] : [])]);
    // a replica starts recovering (status 2, the fast reply shut) and is normal once all three answered
    await waitFor('every el_ctrl to show view 0 normal', async () => {
      for (const d of dirs) if ((await readCtrl(d!)).status !== 0) return false;
      return true;
    });
    for (let i = 0; i < 3; i++) {
      const ctl = await readCtrl(dirs[i]!);
      expect(ctl).toMatchObject({ view: 0n, status: 0 });
      expect(ctl.gen).toBeGreaterThan(0n);
      if (i === 2) {
        // the lease the fast reply depends on is renewed ahead of now
        expect(ctl.leaseNs).toBeGreaterThan(monotonicNs());
      } else {
        // no lease without --fast-reply: `attach --set --reply` under this replica must not make its
        // kernel acknowledge ops the replica never drains from the ring (it once renewed it anyway)
        expect(ctl.leaseNs).toBe(0n);
      }
    }
    const r = await c.runClient(['-n', '500', '-t', '2']);
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    await waitFor('every el_ctrl to show 500 ops committed', async () => {
      for (const d of dirs) {
        const ctl = await readCtrl(d);
        if (ctl.lastOp !== 500n || ctl.commit !== 500n) return false;
      }
      return true;
    }, 10_000, 50);

    await c.kill(0);
    await waitFor('replicas 1 and 2 to finish a view change in el_ctrl', async () => {
      for (const d of dirs.slice(1)) {
        const ctl = await readCtrl(d);
        if (ctl.view < 1n || ctl.status !== 0 || ctl.view % 3n === 0n) return false;
      }
      return true;
    }, 15_000, 50);
    for (const d of dirs.slice(1)) {
      const ctl = await readCtrl(d);
      const fr = await lookup(d, 'el_fr_state');
      expect(fr.readBigUInt64LE(0)).toBe(ctl.view); // el_fr_state.view follows the view change
      expect(fr.readBigUInt64LE(8)).toBe(ctl.lastOp);
    }
    const after = await c.runClient(['-n', '200', '-t', '2']);
    expect(after.run.exitCode, after.run.stderr).toBe(0);
    expect(await c.settleAndCheck([...r.acks, ...after.acks])).toEqual([]);
    // a replica that stops ends its lease and closes the gate: its kernel acknowledges nothing more
    for (const d of dirs.slice(1)) {
      const ctl = await readCtrl(d);
      expect(ctl.leaseNs).toBe(0n);
      expect(ctl.status).toBe(1);
    }
  }, 60_000);
});
