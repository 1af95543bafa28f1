import { describe, expect, it, onTestFinished } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makefileFlags, mtuOf, offloadsOf, xdpOf } from '../../src/bench/environment.js';
import { listRuns, resolveRun, runId } from '../../src/bench/store.js';

describe('environment parsers', () => {
  it('xdp mode from ip -d -j link', () => {
    expect(xdpOf('[{"ifname":"eth0","mtu":1500}]')).toEqual({ mode: 'none' });
    expect(xdpOf('[{"xdp":{"mode":1,"prog":{"id":386,"name":"el_xdp_dispatch"}}}]')).toEqual({ mode: 'native', progId: 386, name: 'el_xdp_dispatch' });
    expect(xdpOf('[{"xdp":{"mode":2,"prog":{"id":7}}}]')).toMatchObject({ mode: 'generic', progId: 7 });
    expect(xdpOf('not json')).toEqual({ mode: 'unknown' });
    expect(mtuOf('[{"mtu":3000}]')).toBe(3000);
  });
  it('offloads from ethtool -k', () => {
    const o = offloadsOf('Features for eth0:\nrx-checksumming: on\ntx-checksumming: off\n\ttx-checksum-ipv4: off [fixed]\ngeneric-receive-offload: on\nhighdma: on [fixed]\n');
    expect(o).toEqual({ 'rx-checksumming': 'on', 'tx-checksumming': 'off', 'generic-receive-offload': 'on' });
  });
  it('build flags from a Makefile, continuation lines joined', () => {
    const f = makefileFlags('CC ?= cc\nCFLAGS := -O2 -g \\\n   -Wall\nall: x\n\t$(CC) $(CFLAGS)\nLDLIBS := -lbpf\n');
    expect(f).toEqual(['CC ?= cc', 'CFLAGS := -O2 -g -Wall', 'LDLIBS := -lbpf']);
  });
});

describe('run store', () => {
  it('run ids sort by time and name the lab', () => {
    expect(runId('demo', new Date('2026-11-22T03:15:00.123Z'))).toBe('20261122T031500Z-demo');
  });
  it('resolves the newest run, an id, a unique part of one, a folder; says what exists otherwise', () => {
    const dir = mkdtempSync(join(tmpdir(), 'el-runs-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    for (const id of ['20261122T010000Z-a', '20261122T020000Z-b']) {
      mkdirSync(join(dir, id));
      writeFileSync(join(dir, id, 'results.json'), '{}');
    }
    mkdirSync(join(dir, 'not-a-run'));
    const env = { ELECTRODE_LAB_RUNS: dir };
    expect(listRuns(dir)).toHaveLength(2);
    expect(resolveRun(undefined, env).id).toBe('20261122T020000Z-b');
    expect(resolveRun('20261122T010000Z-a', env).id).toBe('20261122T010000Z-a');
    expect(resolveRun('Z-a', env).id).toBe('20261122T010000Z-a');
    expect(resolveRun(join(dir, '20261122T010000Z-a'), env).root).toBe(join(dir, '20261122T010000Z-a'));
    expect(() => resolveRun('2026', env)).toThrow(/ambiguous/);
    expect(() => resolveRun('zzz', env)).toThrow(/no run 'zzz'.*20261122T020000Z-b/);
    expect(() => resolveRun(undefined, { ELECTRODE_LAB_RUNS: join(dir, 'none') })).toThrow(/no bench runs.*electrode-lab bench/);
  });
});
