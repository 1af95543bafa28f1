/** src/upstream/commands.ts: the argv of every upstream build and process (pure). */
import { describe, expect, it } from 'vitest';
import { ALL_FAST_PATHS } from '../../src/lab/bpf.js';
import { clientArgv, fastPathDefines, kernBuildArgv, loaderArgv, replicaArgv, staleStateArgvs, userSpaceBuildArgv } from '../../src/upstream/commands.js';

const NONE = { broadcast: false, quorum: false, reply: false };

describe('upstream command lines', () => {
  it('fast paths map to upstream compile-time switches', () => {
    expect(fastPathDefines(ALL_FAST_PATHS)).toEqual(['-DTC_BROADCAST', '-DFAST_QUORUM_PRUNE', '-DFAST_REPLY']);
    expect(fastPathDefines({ ...NONE, reply: true })).toEqual(['-DFAST_REPLY']);
  });

  it('user space: the verified make line; no CXXFLAGS without fast paths', () => {
    expect(userSpaceBuildArgv('/t', ALL_FAST_PATHS)).toEqual(['make', '-C', '/t', 'PARANOID=0', 'LIBBPF_PATH=/usr/lib/x86_64-linux-gnu', 'CXXFLAGS=-DTC_BROADCAST -DFAST_QUORUM_PRUNE -DFAST_REPLY', 'bench/replica', 'bench/client']);
    expect(userSpaceBuildArgv('/t', NONE).some((a) => a.startsWith('CXXFLAGS'))).toBe(false);
  });

  it('eBPF side: UAPI headers, full unroll, the object beside the source', () => {
    const k = kernBuildArgv('/t', ALL_FAST_PATHS);
    expect(k.slice(0, 6)).toEqual(['clang', '-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu']);
    expect(k).toContain('-unroll-threshold=100000');
    expect(k.slice(-4)).toEqual(['-c', '/t/xdp-handler/fast_kern.c', '-o', '/t/xdp-handler/fast_kern.o']);
  });

  it('processes: absolute loader path (it opens <argv[0]>_kern.o), replica -i, client -n -t -w', () => {
    expect(loaderArgv('/t', 'eth0')).toEqual(['/t/xdp-handler/fast', 'eth0']);
    expect(replicaArgv('/t', '/t/config.txt', 2)).toEqual(['/t/bench/replica', '-c', '/t/config.txt', '-m', 'vr', '-i', '2']);
    expect(replicaArgv('/t', '/c', 0, 8)).toEqual(['/t/bench/replica', '-c', '/c', '-m', 'vr', '-i', '0', '-b', '8']);
    expect(clientArgv('/t', '/c', { requests: 1000, threads: 8, warmupSec: 1 })).toEqual(['/t/bench/client', '-c', '/c', '-m', 'vr', '-n', '1000', '-t', '8', '-w', '1']);
  });

  it('stale state: every pin, both XDP modes and clsact', () => {
    const s = staleStateArgvs('eth0');
    expect(s[0]).toEqual(['rm', '-f', '/sys/fs/bpf/paxos_prepare_buffer', '/sys/fs/bpf/paxos_request_buffer', '/sys/fs/bpf/paxos_ctr_state', '/sys/fs/bpf/FastBroadCast']);
    expect(s.slice(1).map((a) => a.join(' '))).toEqual(['ip link set dev eth0 xdpdrv off', 'ip link set dev eth0 xdpgeneric off', 'tc qdisc del dev eth0 clsact']);
  });
});
