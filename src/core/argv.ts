/**
 * Every command line electrode-lab runs on a node, built in ONE place: the
 * replica, the client (and its readiness probe and the floor's echo mode),
 * the echo server, the eBPF loader's subcommands and gdb. Pure: paths and
 * values in, argv out. What the flags mean: native/PROTOCOL.md (replica,
 * client, echo), bpf/README.md (el-loader).
 */

export interface FastPathFlags {
  broadcast: boolean;
  quorum: boolean;
  reply: boolean;
}

/** The replica flags of a set of fast paths (the contract in native/'s CLI). */
export function fastPathFlags(fp: FastPathFlags): string[] {
  const out: string[] = [];
  if (fp.broadcast) out.push('--fast-broadcast');
  if (fp.quorum) out.push('--fast-quorum');
  if (fp.reply) out.push('--fast-reply');
  return out;
}

export interface ReplicaArgs {
  config: string;
  index: number;
  logLevel?: string;
  /** The node's pin folder, when fast paths are attached (or the replica should keep el_ctrl current). */
  pinDir?: string;
  fast?: FastPathFlags;
  /** Write the committed log as ops commit (the bench's safety check). */
  dumpLog?: string;
  /** Reorder this fraction of received datagrams in user space (a nemesis without sch_netem). */
  reorderRate?: number;
  /** The lab build's negative control (bench --unsafe-no-recovery): start normal with empty state. */
  labNoRecovery?: boolean;
  /** Extra flags, as given (tests, --replica-args). */
  extra?: string[];
}

export function replicaArgv(binary: string, a: ReplicaArgs): string[] {
  return [
    binary, '-c', a.config, '-i', String(a.index), '--log-level', a.logLevel ?? 'info',
    ...(a.pinDir ? ['--bpf-pin-dir', a.pinDir] : []),
    ...(a.fast ? fastPathFlags(a.fast) : []),
    ...(a.dumpLog ? ['--dump-log', a.dumpLog] : []),
    ...(a.reorderRate !== undefined ? ['--reorder-rate', String(a.reorderRate)] : []),
    ...(a.labNoRecovery ? ['--lab-no-recovery'] : []),
    ...(a.extra ?? []),
  ];
}

/** The bench's relay floor on a replica (native/src/relay.c): the replica's I/O loop and VR's message pattern, no protocol. */
export function relayFloorArgv(binary: string, config: string, index: number): string[] {
  return [binary, '-c', config, '-i', String(index), '--log-level', 'info', '--relay-floor'];
}

/** The dump file of a replica's incarnation K (0 = first start): `<file>.K`, so a restart never truncates an earlier life's dump. */
export function incarnationDumpLog(first: string, incarnation: number): string {
  const base = first.replace(/\.\d+$/, '');
  return incarnation ? `${base}.${incarnation}` : base;
}

/** A recorded replica command line, started again as incarnation K: the same flags, its own --dump-log file. */
export function restartArgv(argv: readonly string[], incarnation: number): string[] {
  const out = [...argv];
  const i = out.indexOf('--dump-log');
  if (i >= 0 && out[i + 1] !== undefined) out[i + 1] = incarnationDumpLog(out[i + 1]!, incarnation);
  return out;
}

export interface ClientArgs {
  config: string;
  /** -n (measured requests) or -d (seconds); strings pass through as typed. */
  requests?: number | string;
  duration?: number | string;
  warmup?: number | string;
  threads?: number | string;
  history?: string;
  ackLog?: string;
  /** The floor: requests go to replica 0's address, where `echo` answers. */
  echo?: boolean;
  idBase?: number;
  keyPrefix?: string;
  timeoutMs?: number;
}

export function clientArgv(binary: string, a: ClientArgs): string[] {
  const load = a.duration !== undefined ? ['-d', String(a.duration)] : ['-n', String(a.requests ?? 1000)];
  return [
    binary, '-c', a.config, ...load,
    ...(a.warmup !== undefined ? ['-w', String(a.warmup)] : []),
    ...(a.threads !== undefined ? ['-t', String(a.threads)] : []),
    ...(a.echo ? ['--echo'] : []),
    ...(a.history ? ['--history', a.history] : []),
    ...(a.ackLog ? ['--ack-log', a.ackLog] : []),
    ...(a.timeoutMs !== undefined ? ['--timeout-ms', String(a.timeoutMs)] : []),
    ...(a.idBase !== undefined ? ['--id-base', String(a.idBase)] : []),
    ...(a.keyPrefix ? ['--key-prefix', a.keyPrefix] : []),
  ];
}

/** One request that must commit: the readiness probe (its own client id and keys). */
export function probeArgv(binary: string, config: string, idBase: number): string[] {
  return clientArgv(binary, { config, requests: 1, threads: 1, warmup: 0, timeoutMs: 200, idBase, keyPrefix: 'probe' });
}

/** The floor's UDP echo server on a replica's address. */
export function echoArgv(binary: string, ip: string, port: number): string[] {
  return [binary, '-l', `${ip}:${port}`];
}

/** The `forge` nemesis's sender (native/src/forge.c), on the client node. */
export function forgeArgv(binary: string, o: { config: string; view: number; seconds: number; rate: number; seed: number }): string[] {
  return [binary, '-c', o.config, '--view', String(o.view), '--seconds', o.seconds.toFixed(3), '--rate', String(o.rate), '--seed', String(o.seed)];
}

/** el-loader's subcommands. `nic` is how the node's lab NIC is named: ['--ifname', X] or ['--ifmac', M] (the provider's choice). */
export const loaderArgv = {
  attach(loader: string, o: { pinDir: string; peers: string; index: number; nic: string[]; fp: FastPathFlags; hook: 'xdp' | 'tc'; xdpMode: string; json?: boolean }): string[] {
    return [
      loader, 'attach', '--pin-dir', o.pinDir, '--peers', o.peers, '--index', String(o.index), ...o.nic,
      ...(o.fp.broadcast ? ['--broadcast'] : []),
      ...(o.fp.quorum ? ['--quorum'] : []),
      ...(o.fp.reply ? ['--reply'] : []),
      // the XDP hook is the loader's default
      ...(o.hook === 'tc' ? ['--hook', 'tc'] : ['--xdp-mode', o.xdpMode]),
      ...(o.json === false ? [] : ['--json']),
    ];
  },
  set(loader: string, pinDir: string, fp: FastPathFlags): string[] {
    const onOff = (b: boolean) => (b ? 'on' : 'off');
    return [loader, 'set', '--pin-dir', pinDir, '--broadcast', onOff(fp.broadcast), '--quorum', onOff(fp.quorum), '--reply', onOff(fp.reply)];
  },
  detach(loader: string, pinDir: string, nic: string[]): string[] {
    return [loader, 'detach', '--pin-dir', pinDir, ...nic];
  },
  stats(loader: string, pinDir: string): string[] {
    return [loader, 'stats', '--pin-dir', pinDir, '--json'];
  },
  show(loader: string, pinDir: string): string[] {
    return [loader, 'show', '--pin-dir', pinDir, '--json'];
  },
  /** netns labs, in the switch namespace: the XDP pass that lets a veth take XDP_TX frames. */
  peerPass(loader: string, ifname: string, on: boolean): string[] {
    return [loader, 'peer-pass', '--ifname', ifname, ...(on ? [] : ['--off'])];
  },
  /** netns labs, in the switch namespace: the nemesis' loss and duplication. */
  impair(loader: string, pinDir: string, ifname: string, rates: { lossPercent?: number; duplicatePercent?: number } | undefined): string[] {
    return [loader, 'impair', '--pin-dir', pinDir, '--ifname', ifname, ...(rates ? ['--loss', String(rates.lossPercent ?? 0), '--dup', String(rates.duplicatePercent ?? 0)] : ['--off'])];
  },
};

/** gdb on a core: the crashing thread first, then every thread with its locals. */
export function gdbArgv(binary: string, core: string): string[] {
  return ['gdb', '-batch', '-nx', '-ex', 'set pagination off', '-ex', 'bt', '-ex', 'thread apply all bt full', binary, core];
}

/**
 * A Linux 5.8 build for libvirt guests. gcc 12 builds 5.8 only with
 * HOSTCFLAGS=-fcommon (dtc's duplicate yylloc) and KCFLAGS=-Wno-error.
 */
export const kernelArgv = {
  extract(tarball: string, dir: string): string[] {
    return ['tar', '-xf', tarball, '-C', dir, '--strip-components=1'];
  },
  make(tree: string, targets: string[], jobs: number): string[] {
    return ['make', '-C', tree, `-j${jobs}`, 'HOSTCFLAGS=-fcommon', 'KCFLAGS=-Wno-error', ...targets];
  },
  /** scripts/config on the tree's .config: `enable` =y, `disable` off. */
  config(tree: string, enable: string[], disable: string[]): string[] {
    return [`${tree}/scripts/config`, '--file', `${tree}/.config`, ...enable.flatMap((o) => ['--enable', o]), ...disable.flatMap((o) => ['--disable', o])];
  },
};
