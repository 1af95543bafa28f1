/**
 * What the upstream patch works on and gives back: the tree's files it
 * edits, the lab it writes into them, its options, the edits and diff it
 * returns, and the error that lists every anchor it did not find.
 */
import { Diagnostic, DiagnosticsError } from '../core/diagnostics.js';

export const UPSTREAM_FILES = {
  config: 'config.txt',
  user: 'xdp-handler/fast_user.c',
  common: 'xdp-handler/fast_common.h',
  kern: 'xdp-handler/fast_kern.c',
  replica: 'vr/replica.cc',
  makefile: 'Makefile',
} as const;
export type UpstreamFile = (typeof UPSTREAM_FILES)[keyof typeof UPSTREAM_FILES];
/** Repository-relative path -> text. config, user, common and kern are required. */
export type UpstreamSources = Partial<Record<UpstreamFile, string>>;

/** The port upstream's fast_kern.c compares with. */
export const UPSTREAM_PORT = 12345;
/** Where upstream pins (fast_user.c) and opens (vr/replica.cc) its maps. */
export const UPSTREAM_PIN_DIR = '/sys/fs/bpf';
/** The maps and program upstream pins, by file name under the pin folder. */
export const UPSTREAM_PINS = ['paxos_prepare_buffer', 'paxos_request_buffer', 'paxos_ctr_state', 'FastBroadCast'] as const;

export interface UpstreamReplica {
  index: number;
  ip: string;
  mac: string;
  port: number;
  ifname: string;
}

export interface UpstreamLab {
  n: number;
  f: number;
  replicas: UpstreamReplica[];
  /**
   * One pin folder for every node (upstream compiles the path into both the
   * loader and the replica). Default /sys/fs/bpf, which is right when each
   * node has its own bpffs in its own mount namespace.
   */
  pinDir?: string;
  /** Absolute path of config.txt as the loader sees it; default: the path the loader already opens. */
  configPath?: string;
}

export interface PatchOptions {
  /** Build with the UAPI headers and libbpf 1.x (default true); false keeps upstream's 0.x calls. */
  libbpf1?: boolean;
  /** Drop -DNASSERT from the top Makefile so ASSERT() failures panic instead of being compiled out (needs Makefile). */
  asserts?: boolean;
  /**
   * Write the lab's values (default true). false = the files stay as they
   * are (a course scenario's config.txt, MAC table, CLUSTER_SIZE, port,
   * config path and its bugs) and only the toolchain edits of `libbpf1` are
   * made, so the user's failure can be reproduced on this machine.
   */
  values?: boolean;
}

export interface PatchEdit {
  file: UpstreamFile;
  /** One human line, e.g. `CLUSTER_SIZE 3 -> 5`. */
  what: string;
}

export interface UpstreamPatch {
  /** New text of every file given (unchanged ones too). */
  files: UpstreamSources;
  /** Files whose text changed, in diff order. */
  changed: UpstreamFile[];
  /** Unified diff of all changed files, for `patch -p1` in the tree's root. */
  diff: string;
  edits: PatchEdit[];
  /** The UDP port the eBPF programs now compare with (= every replica's port). */
  port: number;
}

export interface MissingAnchor {
  file: UpstreamFile;
  anchor: string;
}

/** Anchors that were not found (the tree differs from upstream) and lab values upstream cannot take. */
export class UpstreamPatchError extends DiagnosticsError {
  constructor(diagnostics: Diagnostic[], readonly missing: MissingAnchor[]) {
    super(diagnostics, 'upstream-patch');
    this.name = 'UpstreamPatchError';
  }
}
