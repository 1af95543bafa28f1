/**
 * Every command line for a patched copy of upstream Electrode, in one place:
 * its builds (verified on Debian 12: g++ 12, clang 14, libbpf 1.1; see
 * src/upstream/NOTES.md), its eBPF loader, replica and client. Pure.
 */
import { FastPaths } from '../lab/bpf.js';
import { UPSTREAM_PIN_DIR, UPSTREAM_PINS } from './patch.js';

/** Debian's libbpf-dev puts libbpf.a here; upstream's Makefile links it even without fast paths. */
export const DEBIAN_LIBBPF_PATH = '/usr/lib/x86_64-linux-gnu';

/** The compile-time switches of upstream's user space (CXXFLAGS) and eBPF side. */
export function fastPathDefines(fp: FastPaths): string[] {
  return [...(fp.broadcast ? ['-DTC_BROADCAST'] : []), ...(fp.quorum ? ['-DFAST_QUORUM_PRUNE'] : []), ...(fp.reply ? ['-DFAST_REPLY'] : [])];
}

export function anyFastPath(fp: FastPaths): boolean {
  return fp.broadcast || fp.quorum || fp.reply;
}

/**
 * bench/replica and bench/client. CXXFLAGS is not a make dependency: a tree
 * built with other fast paths must be cleaned first (or use one copy per set).
 */
export function userSpaceBuildArgv(tree: string, fp: FastPaths | string[], jobs = 1): string[] {
  const defs = Array.isArray(fp) ? fp : fastPathDefines(fp);
  return ['make', ...(jobs > 1 ? [`-j${jobs}`] : []), '-C', tree, 'PARANOID=0', `LIBBPF_PATH=${DEBIAN_LIBBPF_PATH}`, ...(defs.length ? [`CXXFLAGS=${defs.join(' ')}`] : []), 'bench/replica', 'bench/client'];
}

/**
 * fast_kern.c with the UAPI headers and libbpf-dev's bpf_helpers.h, no kernel
 * tree. `-unroll-threshold` fully unrolls HandleRequest's 128-byte copy loop:
 * rolled, this kernel's verifier gives up on it ("BPF program is too large.
 * Processed 1000001 insn"); the loader loads every program, so one refusal
 * fails them all.
 */
export function kernBuildArgv(tree: string, fp: FastPaths | string[]): string[] {
  return [
    'clang',
    '-O2',
    '-g',
    '-target',
    'bpf',
    '-I/usr/include/x86_64-linux-gnu',
    '-Wno-compare-distinct-pointer-types',
    '-mllvm',
    '-unroll-threshold=100000',
    ...(Array.isArray(fp) ? fp : fastPathDefines(fp)),
    '-c',
    `${tree}/xdp-handler/fast_kern.c`,
    '-o',
    `${tree}/xdp-handler/fast_kern.o`,
  ];
}

/** The loader `fast`, linked statically against Debian's libbpf 1.x. */
export function loaderBuildArgv(tree: string): string[] {
  return ['gcc', '-g', '-O2', '-Wall', `-I${tree}/xdp-handler`, '-o', `${tree}/xdp-handler/fast`, `${tree}/xdp-handler/fast_user.c`, '-l:libbpf.a', '-lelf', '-lz'];
}

/**
 * The loader opens `<argv[0]>_kern.o`, so an absolute argv[0] makes it
 * independent of the working directory. It attaches native XDP and, through
 * `tc`, TC egress on `ifname`, pins under /sys/fs/bpf, and runs until
 * SIGINT/SIGTERM, when it detaches and unpins (not after SIGKILL or a crash).
 */
export function loaderArgv(tree: string, ifname: string): string[] {
  return [`${tree}/xdp-handler/fast`, ifname];
}

export function replicaArgv(tree: string, config: string, index: number, batch = 1): string[] {
  return [`${tree}/bench/replica`, '-c', config, '-m', 'vr', '-i', String(index), ...(batch > 1 ? ['-b', String(batch)] : [])];
}

export interface ClientRun {
  /** Requests per logical client, counted after the warm-up. */
  requests: number;
  /** Logical clients (closed-loop) in the one process. */
  threads: number;
  warmupSec: number;
}

export function clientArgv(tree: string, config: string, run: ClientRun): string[] {
  return [`${tree}/bench/client`, '-c', config, '-m', 'vr', '-n', String(run.requests), '-t', String(run.threads), '-w', String(run.warmupSec)];
}

/**
 * What a killed loader leaves behind and the next start trips over (pins:
 * `assert(bpf_obj_pin(...) == 0)` aborts; XDP: XDP_FLAGS_UPDATE_IF_NOEXIST
 * makes the attach fail; clsact: `assert(system("tc qdisc add ...") == 0)`).
 * Run inside the node before each loader start; each may fail harmlessly.
 */
export function staleStateArgvs(ifname: string, pinDir = UPSTREAM_PIN_DIR): string[][] {
  return [['rm', '-f', ...UPSTREAM_PINS.map((p) => `${pinDir}/${p}`)], ['ip', 'link', 'set', 'dev', ifname, 'xdpdrv', 'off'], ['ip', 'link', 'set', 'dev', ifname, 'xdpgeneric', 'off'], ['tc', 'qdisc', 'del', 'dev', ifname, 'clsact']];
}
