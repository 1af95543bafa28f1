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
import { ASAN_BIN, LoopbackLauncher, TestCluster, buildNative, loopbackAddrs, nextPortBase, waitFor } from './helpers/cluster.js';

const IS_ROOT = process.getuid?.() === 0;
const BPFFS = existsSync('/sys/fs/bpf') && readFileSync('/proc/mounts', 'utf8').includes(' /sys/fs/bpf bpf ');
const PIN_ROOT = `/sys/fs/bpf/el-native-test-${process.pid}`;
const scratch = mkdtempSync(join(tmpdir(), 'el-native-fp-'));
let launcher = new LoopbackLauncher();

const CTRL_SIZE = 48; // struct el_ctrl
const CONFIG_SIZE = 28; // struct el_config
const FR_STATE_SIZE = 16; // struct el_fr_state

async function bpftool(...args: string[]): Promise<string> {
  const r = await execa('bpftool', args, { reject: false });
  if (r.exitCode !== 0) throw new Error(`bpftool ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Pins el_ctrl, el_config (with `enabled`), el_fr_state and el_fr_ring in a folder of ours. */
async function makePins(name: string, enabled: number): Promise<string> {
  const dir = join(PIN_ROOT, name);
  mkdirSync(dir, { recursive: true });
  await bpftool('map', 'create', join(dir, 'el_ctrl'), 'type', 'array', 'key', '4', 'value', String(CTRL_SIZE), 'entries', '1', 'name', 'el_ctrl');
  await bpftool('map', 'create', join(dir, 'el_config'), 'type', 'array', 'key', '4', 'value', String(CONFIG_SIZE), 'entries', '1', 'name', 'el_config');
  await bpftool('map', 'create', join(dir, 'el_fr_state'), 'type', 'array', 'key', '4', 'value', String(FR_STATE_SIZE), 'entries', '1', 'name', 'el_fr_state');
  await bpftool('map', 'create', join(dir, 'el_fr_ring'), 'type', 'ringbuf', 'key', '0', 'value', '0', 'entries', '65536', 'name', 'el_fr_ring');
  const cfg = Buffer.alloc(CONFIG_SIZE);
  cfg.writeUInt32LE(enabled, 12); // el_config.enabled
  await bpftool('map', 'update', 'pinned', join(dir, 'el_config'), 'key', '0', '0', '0', '0', 'value', ...[...cfg].map(String));
  return dir;
}

async function lookup(dir: string, map: string): Promise<Buffer> {
  const out = JSON.parse(await bpftool('-j', 'map', 'lookup', 'pinned', join(dir, map), 'key', '0', '0', '0', '0')) as { value: string[] };
  return Buffer.from(out.value.map((h) => parseInt(h, 16)));
}

interface Ctrl { view: bigint; lastOp: bigint; commit: bigint; status: number; myIdx: number; leaderIdx: number; n: number; f: number; gen: number }
async function readCtrl(dir: string): Promise<Ctrl> {
  const b = await lookup(dir, 'el_ctrl');
  return {
    view: b.readBigUInt64LE(0), lastOp: b.readBigUInt64LE(8), commit: b.readBigUInt64LE(16),
    status: b.readUInt32LE(24), myIdx: b.readUInt32LE(28), leaderIdx: b.readUInt32LE(32),
    n: b.readUInt32LE(36), f: b.readUInt32LE(40), gen: b.readUInt32LE(44),
  };
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
    const c = new TestCluster({ dir: join(scratch, 'off'), n: 3, f: 1, addrs: loopbackAddrs(3, nextPortBase()), replicaNodes: ['r0', 'r1', 'r2'], clientNode: 'c', launcher });
    const dir = await makePins('off', 0x2 | 0x4); // quorum + reply on, broadcast OFF
    const r = await execa(replicaBin, ['-c', c.configFile, '-i', '0', '--bpf-pin-dir', dir, '--fast-broadcast'], { reject: false, timeout: 10_000 });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('electrode-lab attach --broadcast');
    const dir2 = await makePins('off2', 0x1);
    const q = await execa(replicaBin, ['-c', c.configFile, '-i', '1', '--bpf-pin-dir', dir2, '--fast-reply'], { reject: false, timeout: 10_000 });
    expect(q.exitCode).toBe(1);
    expect(q.stderr).toContain('electrode-lab attach --reply');
    // and a bad option changes nothing: the maps are untouched
    expect((await readCtrl(dir)).gen).toBe(0);
  });

  it('writes el_ctrl on start, as ops commit and through a view change; resets el_fr_state', async () => {
    const dirs = await Promise.all([0, 1, 2].map((i) => makePins(`r${i}`, 0x4)));
    const c = new TestCluster({ dir: join(scratch, 'ctrl'), n: 3, f: 1, addrs: loopbackAddrs(3, nextPortBase()), replicaNodes: ['r0', 'r1', 'r2'], clientNode: 'c', launcher });
    // --bpf-pin-dir without --fast-*: el_ctrl is kept current, the data path stays in user space
    await c.start((i) => ['--bpf-pin-dir', dirs[i]!]);
    for (let i = 0; i < 3; i++) {
      const ctl = await readCtrl(dirs[i]!);
      expect(ctl).toMatchObject({ view: 0n, status: 0, myIdx: i, leaderIdx: 0, n: 3, f: 1 });
      expect(ctl.gen).toBeGreaterThan(0);
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
        if (ctl.view < 1n || ctl.status !== 0 || ctl.leaderIdx !== Number(ctl.view % 3n)) return false;
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
  }, 60_000);
});
