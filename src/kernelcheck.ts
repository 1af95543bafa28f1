/**
 * `electrode-lab check-kernel`: do the fast paths load, pass the verifier,
 * attach AND work on ANOTHER kernel than the host's, e.g. Linux 5.8.1 (the
 * paper's kernel, ../shared/kernels/) or Debian 12's 6.1 (the debian12 box)?
 *
 * Before booting, the kernel's config (next to the image, /boot/config-*, or
 * given) says which features it lacks. Then the image boots directly under
 * qemu (-kernel, no disk, no network) with a throw-away initramfs holding
 * busybox, bpftool, iproute2, our loader and probe, the eBPF objects and the
 * kernel's own veth/clsact/cls_bpf modules when it has them as modules. Its
 * /init loads every object on its own (bpftool prog loadall: the guest's
 * verifier), attaches all fast paths on a veth with native XDP + TC egress
 * the way a replica gets them, sends frames through each fast path and
 * reports the counters, detaches, and powers off. Seconds under software
 * emulation. A boot that never reaches /init ends at a deadline with a
 * diagnosis.
 *
 * Pure parts (release from a bzImage, config parsing and the feature check,
 * the init script, parsing the console, ldd output) are exported for the
 * unit tests; runKernelCheck is the edge.
 */
import { accessSync, chmodSync, closeSync, constants, copyFileSync, openSync, readSync, statSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Diagnostic, LabError } from './diagnostics.js';
import { projectRoot } from './paths.js';
import { bpfBuildDir, bpfObject, loaderPath, probePath } from './build.js';
import { loaderArgv } from './argv.js';
import { shellQuote } from './runner.js';

/** Where the guest's initramfs has the loader. */
const GUEST_LOADER = '/el/el-loader';
const sh = (argv: string[]) => shellQuote(argv);
import { planFromInputs, replicas } from './plan.js';
import { kvmUsable, missingTools, Tool, which } from './probe.js';
import { peerTable } from './render.js';
import { Runner } from './runner.js';

export const KERNEL_CHECK_TOOLS: Tool[] = [
  { cmd: 'qemu-system-x86_64', pkg: 'qemu-system-x86', why: 'boot the kernel under test' },
  { cmd: 'busybox', pkg: 'busybox', why: "the check's tiny userland" },
  { cmd: 'cpio', pkg: 'cpio', why: 'pack the initramfs' },
  { cmd: 'gzip', pkg: 'gzip', why: 'pack the initramfs' },
  { cmd: 'bpftool', pkg: 'bpftool', why: 'load every program in the guest' },
  { cmd: 'ip', pkg: 'iproute2', why: 'the veth in the guest' },
  { cmd: 'tc', pkg: 'iproute2', why: 'show the TC egress program in the guest' },
  { cmd: 'ldd', pkg: 'libc-bin', why: 'find the libraries the binaries need' },
];

/** Modules the check needs when the kernel has them as modules (built-in is fine too). */
export const GUEST_MODULES = ['kernel/drivers/net/veth.ko', 'kernel/net/sched/sch_ingress.ko', 'kernel/net/sched/cls_bpf.ko'];

/** The eBPF objects of bpf/build (each loaded on its own in the guest), the dispatcher first. */
export function bpfObjects(root = projectRoot()): string[] {
  const dir = bpfBuildDir(root);
  const all = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.bpf.o')) : [];
  return all.sort((a, b) => (a === 'el_xdp.bpf.o' ? -1 : b === 'el_xdp.bpf.o' ? 1 : a.localeCompare(b)));
}

/**
 * The version string of an x86 bzImage: the setup header's kernel_version
 * field (offset 0x20E) points, relative to 0x200, at a NUL-terminated string
 * like "6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP ...".
 * Returns the release (first word), or undefined when it is not a bzImage.
 */
export function bzImageRelease(image: Buffer): string | undefined {
  if (image.length < 0x210 || image.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const at = image.readUInt16LE(0x20e) + 0x200;
  if (at >= image.length) return undefined;
  const end = image.indexOf(0, at);
  const text = image.toString('latin1', at, end < 0 ? Math.min(image.length, at + 256) : end);
  const release = text.split(' ')[0];
  return release && /^\d+\.\d+/.test(release) ? release : undefined;
}

/** Absolute library paths from `ldd` output (the vdso has none and is skipped). */
export function lddPaths(out: string): string[] {
  const paths = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) paths.add(m[1]);
  }
  return [...paths];
}

// ---- the kernel's config: what it has, before booting it ------------------

/** `CONFIG_X=y|m|value` lines; `# CONFIG_X is not set` counts as absent. */
export function parseKernelConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

export interface KernelFeature {
  option: string;
  what: string;
  /** A loadable module can provide it (the path under the modules folder). */
  module?: string;
  /** Absent = the check cannot run (true), or only a note (false). */
  required: boolean;
  note?: string;
}

export const KERNEL_FEATURES: KernelFeature[] = [
  { option: 'CONFIG_BPF_SYSCALL', what: 'the bpf() system call', required: true },
  { option: 'CONFIG_BLK_DEV_INITRD', what: 'an initramfs (the check boots one)', required: true },
  { option: 'CONFIG_RD_GZIP', what: 'gzip-compressed initramfs', required: true },
  { option: 'CONFIG_SERIAL_8250_CONSOLE', what: 'a console on ttyS0 (the check reports there)', required: true },
  { option: 'CONFIG_VETH', what: 'veth (the check attaches on a veth pair)', module: GUEST_MODULES[0]!, required: true },
  { option: 'CONFIG_NET_SCH_INGRESS', what: 'the clsact qdisc (TC egress hook)', module: GUEST_MODULES[1]!, required: true },
  { option: 'CONFIG_NET_CLS_BPF', what: 'the TC BPF classifier (cls_bpf)', module: GUEST_MODULES[2]!, required: true },
  { option: 'CONFIG_BPF_JIT', what: 'the BPF JIT', required: false, note: 'programs run interpreted: slower, same verdicts' },
  { option: 'CONFIG_DEBUG_INFO_BTF', what: 'kernel BTF', required: false, note: 'fine: our objects use no CO-RE and inline every helper' },
];

export interface ConfigCheck {
  /** Where the config came from, or undefined when none was found. */
  source?: string;
  missing: Diagnostic[];
  notes: string[];
}

/** Which features the kernel lacks, from its config (pure; `hasModule` says whether a .ko exists). */
export function checkKernelFeatures(release: string, config: Map<string, string> | undefined, source: string | undefined, hasModule: (m: string) => boolean): ConfigCheck {
  const missing: Diagnostic[] = [];
  const notes: string[] = [];
  const [maj, min] = release.split(/[.-]/).map(Number);
  if (maj !== undefined && min !== undefined && (maj < 5 || (maj === 5 && min < 8))) {
    notes.push(`Linux ${release} has no BPF ring buffer (5.8+): the fast reply cannot load there; the other fast paths can`);
  }
  if (!config) {
    notes.push('no config found for this kernel (pass --config FILE, or put config-<name> next to the image): features are only checked by booting it');
    return { missing, notes };
  }
  for (const f of KERNEL_FEATURES) {
    const v = config.get(f.option);
    if (v === 'y') continue;
    if (v === 'm' && f.module) {
      if (hasModule(f.module)) continue;
      missing.push({ code: 'KERNEL_MODULE_MISSING', subject: f.option, message: `${f.what} is a module, but ${basename(f.module)} is not in the modules folder`, hint: 'pass that kernel\'s modules folder with --modules DIR' });
      continue;
    }
    if (f.required) missing.push({ code: 'KERNEL_FEATURE_MISSING', subject: f.option, message: `${source} lacks ${f.what}`, hint: `rebuild the kernel with ${f.option}=y${f.module ? ' (or =m with --modules)' : ''}` });
    else notes.push(`no ${f.what} (${f.option}): ${f.note}`);
  }
  return { source, missing, notes };
}

/** Config candidates for an image: the given one, config-<name> beside it, /boot/config-<release>. */
export function configCandidates(kernel: string, release: string, given?: string): string[] {
  if (given) return [given];
  const name = basename(kernel).replace(/^vmlinuz-?/, '');
  return [...(name ? [join(dirname(kernel), `config-${name}`)] : []), join(dirname(kernel), `config-${release}`), `/boot/config-${release}`];
}

// ---- the guest --------------------------------------------------------------

export interface GuestSetup {
  /** From a real 3-replica plan: the node the guest plays (replica0) and two peers. */
  me: { index: number; mac: string; ip: string; port: number };
  peers: { index: number; mac: string; ip: string; port: number }[];
  prefix: number;
  /** Module files inside the initramfs, in load order. */
  modules: string[];
  objects: string[];
}

/** The initramfs /init: each step reports `EL-GUEST <key> <value>` on the console, outputs in EL-LOG blocks. */
export function guestInit(s: GuestSetup): string {
  const pin = '/sys/fs/bpf/electrode-lab/check/replica0';
  const [p1, p2] = s.peers as [GuestSetup['peers'][number], GuestSetup['peers'][number]];
  const ep = (n: { mac: string; ip: string; port: number }) => `${n.mac},${n.ip},${n.port}`;
  const ipp = (n: { ip: string; port: number }) => `${n.ip},${n.port}`;
  const probe = (key: string, args: string) => `/el/el-probe ${args} 2>/tmp/probe.err; rc=$?; say probe ${key} $rc; [ $rc = 0 ] || log probe-${key} /tmp/probe.err`;
  return `#!/bin/busybox sh
# electrode-lab check-kernel: generated, runs as PID 1 in the guest
/bin/busybox --install -s /bin
export PATH=/bin
say() { echo "EL-GUEST $*"; }
log() { echo "EL-LOG-BEGIN $1"; tail -c 6000 "$2"; echo; echo "EL-LOG-END $1"; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp 2>/dev/null
mount -t bpf bpf /sys/fs/bpf
say release $(uname -r)
${s.modules.map((m) => `insmod ${m} 2>/tmp/insmod.err || say note insmod ${basename(m)}: $(cat /tmp/insmod.err)`).join('\n')}
${s.objects
  .map(
    (o) => `mkdir -p /sys/fs/bpf/loadall
bpftool prog loadall /el/${o} /sys/fs/bpf/loadall/${o.replace(/\W/g, '_')} >/tmp/load.log 2>&1; rc=$?
say load ${o} $rc
[ $rc = 0 ] || log load-${o} /tmp/load.log
rm -rf /sys/fs/bpf/loadall`,
  )
  .join('\n')}
ip link set lo up
if ip link add el0 type veth peer name el1 2>/tmp/veth.err; then
  ip link set el0 address ${s.me.mac} mtu 1500 up && ip link set el1 address 02:4c:ee:ee:ee:01 up
  ip addr add ${s.me.ip}/${s.prefix} dev el0
  ip neigh replace ${p1.ip} lladdr ${p1.mac} dev el0 nud permanent
  ip neigh replace ${p2.ip} lladdr ${p2.mac} dev el0 nud permanent
  # frames el0 sends with native XDP_TX are accepted by el1 only when el1 runs NAPI
  ${sh(loaderArgv.peerPass(GUEST_LOADER, 'el1', true))} >/tmp/pass.log 2>&1 || log peer-pass /tmp/pass.log
  ${sh(loaderArgv.attach(GUEST_LOADER, { pinDir: pin, peers: '/el/peers.table', index: s.me.index, nic: ['--ifname', 'el0'], fp: { broadcast: true, quorum: true, reply: true }, hook: 'xdp', xdpMode: 'native' }))} >/tmp/attach.json 2>/tmp/attach.log; rc=$?
  say attach $rc
  [ $rc = 0 ] || log attach /tmp/attach.log
  log attach-json /tmp/attach.json
  link=$(ip -d link show dev el0)
  case "$link" in *xdpgeneric*) say xdp generic ;; *" xdp "*|*"xdp/"*|*"prog/xdp"*) say xdp native ;; *) say xdp none ;; esac
  tc filter show dev el0 egress | grep -q bpf && say tc-egress yes || say tc-egress no
  # leader of view 0: a marked Prepare leaves through TC (fan-out to replica${p2.index}, quorum slot armed) ...
  ${probe('broadcast', `udp --src ${ipp(s.me)} --dst ${ipp(p1)} --type 3 --flags 1 --view 0 --opnum 1 --aux 1 --payload-len 40`)}
  # ... and its PrepareOKs arrive: the first completes the quorum (f=1), the second is pruned
  ${probe('quorum', `raw --ifname el1 --src ${ep(p1)} --dst ${ep(s.me)} --type 4 --replica ${p1.index} --view 0 --opnum 1 --aux 0`)}
  ${probe('quorum2', `raw --ifname el1 --src ${ep(p2)} --dst ${ep(s.me)} --type 4 --replica ${p2.index} --view 0 --opnum 1 --aux 0`)}
  # follower in view 1 (leader replica${p1.index}), lease renewed as a replica would: the fast reply answers
  /el/el-loader ctrl --pin-dir ${pin} --view 1 --status 0 --lease-ms 600000 --fr-view 1 --fr-last-op 0 >/tmp/ctrl.log 2>&1 || log ctrl /tmp/ctrl.log
  ${probe('reply', `raw --ifname el1 --src ${ep(p1)} --dst ${ep(s.me)} --type 3 --replica ${p1.index} --view 1 --opnum 1 --aux 1 --payload-len 40 --valid-entry`)}
  /el/el-loader drain --pin-dir ${pin} >/tmp/drain.log 2>&1; say drained $(grep -c '"opnum":1' /tmp/drain.log)
  ${sh(loaderArgv.stats(GUEST_LOADER, pin))} >/tmp/stats.json 2>&1; say stats $?
  log stats /tmp/stats.json
  ${sh(loaderArgv.detach(GUEST_LOADER, pin, ['--ifname', 'el0']))} >/tmp/detach.log 2>&1; rc=$?
  say detach $rc
  [ $rc = 0 ] || log detach /tmp/detach.log
  say pins-left $(ls ${pin} 2>/dev/null | wc -l)
else
  say attach skipped: no veth in this kernel: $(cat /tmp/veth.err)
fi
say done
poweroff -f
`;
}

type Counters = Record<'seen' | 'passed' | 'dropped' | 'cloned' | 'replied' | 'fallback' | 'full' | 'errors', number>;

export interface GuestReport {
  release?: string;
  loads: { object: string; ok: boolean; log?: string }[];
  attach?: { ok: boolean; log?: string } | { skipped: string };
  /** el-loader attach --json: which fast paths loaded, and why the others did not. */
  attached?: { enabled: string; loaded: string; objects: { object: string; loaded: boolean; meaning?: string; verdict?: string }[] };
  xdp?: string;
  tcEgress?: boolean;
  probes: Record<string, boolean>;
  drained?: number;
  stats?: Record<string, Counters>;
  detach?: boolean;
  pinsLeft?: number;
  notes: string[];
  done: boolean;
}

/** Reads the `EL-GUEST` lines and `EL-LOG-BEGIN/END` blocks from the serial console. */
export function parseGuestConsole(text: string): GuestReport {
  const rep: GuestReport = { loads: [], probes: {}, notes: [], done: false };
  const logs = new Map<string, string>();
  const lines = text.replace(/\r/g, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const lb = /EL-LOG-BEGIN (\S+)/.exec(line);
    if (lb) {
      const body: string[] = [];
      for (i++; i < lines.length && !lines[i]!.includes(`EL-LOG-END ${lb[1]}`); i++) body.push(lines[i]!);
      logs.set(lb[1]!, body.join('\n').trim());
      continue;
    }
    const m = /EL-GUEST (\S+) ?(.*)$/.exec(line);
    if (!m) continue;
    const [key, rest] = [m[1]!, m[2]!.trim()];
    const words = rest.split(/\s+/);
    switch (key) {
      case 'release': rep.release = rest; break;
      case 'load': rep.loads.push({ object: words[0] ?? '?', ok: words[1] === '0' }); break;
      case 'attach': rep.attach = words[0] === 'skipped:' ? { skipped: rest.slice('skipped:'.length).trim() } : { ok: words[0] === '0' }; break;
      case 'xdp': rep.xdp = words[0]; break;
      case 'tc-egress': rep.tcEgress = words[0] === 'yes'; break;
      case 'probe': rep.probes[words[0] ?? '?'] = words[1] === '0'; break;
      case 'drained': rep.drained = Number(words[0]); break;
      case 'detach': rep.detach = words[0] === '0'; break;
      case 'pins-left': rep.pinsLeft = Number(words[0]); break;
      case 'note': rep.notes.push(rest); break;
      case 'done': rep.done = true; break;
    }
  }
  for (const l of rep.loads) {
    const log = logs.get(`load-${l.object}`);
    if (log) l.log = log;
  }
  if (rep.attach && 'ok' in rep.attach && logs.has('attach')) rep.attach.log = logs.get('attach');
  const json = (k: string) => {
    try {
      return logs.get(k) ? (JSON.parse(logs.get(k)!) as unknown) : undefined;
    } catch {
      return undefined;
    }
  };
  const a = json('attach-json') as GuestReport['attached'] | undefined;
  if (a) rep.attached = a;
  const st = json('stats') as GuestReport['stats'] | undefined;
  if (st) rep.stats = st;
  for (const [k, v] of logs) if (k.startsWith('probe-')) rep.notes.push(`${k}: ${v}`);
  return rep;
}

/** What each fast path must show in the guest's counters after its frames (the programs behind it moved). */
export const COUNTER_CHECKS: { path: string; what: string; ok: (s: Record<string, Counters>, rep: GuestReport) => boolean }[] = [
  { path: 'broadcast', what: 'broadcast.cloned >= 1 (the marked Prepare was fanned out)', ok: (s) => (s.broadcast?.cloned ?? 0) >= 1 },
  { path: 'quorum', what: 'quorum.passed >= 1 and quorum.dropped >= 1 (one PrepareOK up, the other pruned)', ok: (s) => (s.quorum?.passed ?? 0) >= 1 && (s.quorum?.dropped ?? 0) >= 1 },
  { path: 'reply', what: 'reply.replied >= 1 and one ring record drained', ok: (s, rep) => (s.reply?.replied ?? 0) >= 1 && rep.drained === 1 },
];

/** Problems in a report, one line each; empty = the fast paths work on that kernel. */
export function reportProblems(rep: GuestReport, objects: string[]): string[] {
  const p: string[] = [];
  if (!rep.release) p.push('the guest never reported: the kernel did not boot to our /init (see the console log)');
  for (const o of objects) {
    const l = rep.loads.find((x) => x.object === o);
    if (!l) p.push(`${o}: not loaded`);
    else if (!l.ok) p.push(`${o}: rejected by the ${rep.release ?? 'guest'} verifier:\n${verifierVerdict(l.log ?? '')}`);
  }
  if (!rep.attach) p.push('attach: not reached');
  else if ('skipped' in rep.attach) p.push(`attach: skipped (${rep.attach.skipped})`);
  else if (!rep.attach.ok) p.push(`attach failed:\n${(rep.attach.log ?? '').trim().split('\n').slice(-8).join('\n')}`);
  else {
    for (const o of rep.attached?.objects ?? []) if (!o.loaded) p.push(`el-loader left out ${o.object}: ${o.meaning ?? '?'}`);
    if (rep.xdp !== 'native') p.push(`XDP attached in mode '${rep.xdp ?? '?'}', not native`);
    if (!rep.tcEgress) p.push('no TC egress program after attach');
    if (!rep.stats) p.push('el-loader stats failed');
    else {
      for (const c of COUNTER_CHECKS) if (!c.ok(rep.stats, rep)) p.push(`${c.path}: counters did not move: expected ${c.what}; got ${JSON.stringify(rep.stats[c.path] ?? {})}`);
      const errs = Object.entries(rep.stats).filter(([, v]) => v.errors > 0);
      if (errs.length) p.push(`errors counted: ${errs.map(([k, v]) => `${k} ${v.errors}`).join(', ')}`);
    }
    for (const [k, ok] of Object.entries(rep.probes)) if (!ok) p.push(`probe ${k} could not send its frame`);
    if (!rep.detach) p.push('detach failed');
    if (rep.pinsLeft !== 0) p.push(`${rep.pinsLeft ?? '?'} pins left after detach`);
  }
  if (!rep.done && rep.release) p.push('the guest stopped before the end of the check');
  return p;
}

/** The lines of a verifier log that say why: the last instructions and the message. */
export function verifierVerdict(log: string): string {
  const lines = log.trim().split('\n');
  return lines.slice(-12).join('\n');
}

export interface KernelCheckOptions {
  kernel: string;
  /** /lib/modules/<release> by default. */
  modulesDir?: string;
  /** The kernel's .config; default: config-<name> beside the image, then /boot/config-<release>. */
  configFile?: string;
  runner: Runner;
  root?: string;
  /** Keep the staging folder (initramfs, console log) for a look; its path is in the result. */
  keep?: boolean;
  timeoutMs?: number;
  /** How long the guest may take to reach /init before the check gives up (default: 30 s with KVM, 180 s without). */
  bootDeadlineMs?: number;
  onStep?: (what: string) => void;
  signal?: AbortSignal;
}

export interface KernelCheckResult {
  kernel: string;
  release: string;
  accel: 'kvm' | 'tcg';
  config: ConfigCheck;
  report: GuestReport;
  problems: string[];
  console: string;
  stagingDir?: string;
  bootSeconds: number;
}

function modulesDirFor(kernel: string, modulesDir?: string): string {
  const release = bzImageRelease(readHead(kernel)) ?? '';
  return modulesDir ?? join('/lib/modules', release);
}

/** The config check of a kernel image (edge: reads the config and the modules folder). */
export function kernelConfigCheck(kernel: string, opts: { configFile?: string; modulesDir?: string } = {}): ConfigCheck {
  const release = bzImageRelease(readHead(kernel)) ?? '?';
  const source = configCandidates(kernel, release, opts.configFile).find((c) => existsSync(c));
  const config = source ? parseKernelConfig(readFileSync(source, 'utf8')) : undefined;
  const mods = modulesDirFor(kernel, opts.modulesDir);
  const hasModule = (m: string) => [m, `${m}.xz`, `${m}.zst`].some((c) => existsSync(join(mods, c)));
  return checkKernelFeatures(release, config, source, hasModule);
}

export function kernelCheckPreconditions(opts: { kernel: string; root?: string; configFile?: string; modulesDir?: string }): Diagnostic[] {
  const d = missingTools(KERNEL_CHECK_TOOLS);
  if (!existsSync(opts.kernel)) {
    const found = listHostKernels();
    d.push({ code: 'KERNEL_NOT_FOUND', subject: opts.kernel, message: 'no such kernel image', hint: found.length ? `kernels on this host: ${found.join(', ')}` : 'apt-get install linux-image-amd64 (Debian 12: 6.1), or pass the vmlinuz of the kernel your VMs run' });
  } else if (!canRead(opts.kernel)) {
    d.push({ code: 'KERNEL_UNREADABLE', subject: opts.kernel, message: 'cannot be read by this user', hint: 'run as root, or pass a readable copy with --kernel' });
  } else if (!statSync(opts.kernel).isFile() || !bzImageRelease(readHead(opts.kernel))) {
    d.push({ code: 'KERNEL_NOT_BZIMAGE', subject: opts.kernel, message: "not an x86 bzImage (no 'HdrS' setup header)", hint: 'pass a vmlinuz file (e.g. /boot/vmlinuz-<release>), not a vmlinux, .deb or initrd' });
  } else {
    if (opts.configFile && !existsSync(opts.configFile)) d.push({ code: 'KERNEL_CONFIG_NOT_FOUND', subject: opts.configFile, message: 'no such file', hint: "pass the kernel's .config" });
    else d.push(...kernelConfigCheck(opts.kernel, opts).missing);
  }
  const root = opts.root ?? projectRoot();
  for (const f of [loaderPath(root), probePath(root), bpfObject('el_xdp.bpf.o', root), bpfObject('el_pass.bpf.o', root)]) {
    if (!existsSync(f)) d.push({ code: 'NOT_BUILT', subject: f.slice(root.length + 1), message: 'missing', hint: 'npm run build (or make -C bpf)' });
  }
  return d;
}

function canRead(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first 64 KiB of a file: enough for the bzImage setup header and its version string. */
function readHead(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** /boot/vmlinuz-* on this host, oldest release first. */
export function listHostKernels(boot = '/boot'): string[] {
  if (!existsSync(boot)) return [];
  return readdirSync(boot)
    .filter((f) => f.startsWith('vmlinuz-'))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .map((f) => join(boot, f));
}

async function stage(runner: Runner, dir: string, root: string, modulesDir: string, objects: string[]): Promise<{ modules: string[]; skippedModules: string[] }> {
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'el', 'mod', 'proc', 'sys', 'tmp', 'dev']) mkdirSync(join(rootfs, d), { recursive: true });
  const bins: [string, string][] = [
    [which('busybox')!, 'bin/busybox'],
    [which('bpftool')!, 'bin/bpftool'],
    [which('ip')!, 'bin/ip'],
    [which('tc')!, 'bin/tc'],
    [loaderPath(root), 'el/el-loader'],
    [probePath(root), 'el/el-probe'],
  ];
  const libs = new Set<string>();
  for (const [src, dst] of bins) {
    copyFileSync(src, join(rootfs, dst));
    chmodSync(join(rootfs, dst), 0o755);
    const l = await runner.run(['ldd', src], { check: false });
    for (const p of lddPaths(l.stdout)) libs.add(p);
  }
  for (const lib of libs) {
    mkdirSync(join(rootfs, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(rootfs, lib)); // copyFileSync follows symlinks
  }
  // the loader finds the objects next to itself
  for (const o of objects) copyFileSync(join(root, 'bpf/build', o), join(rootfs, 'el', o));
  // a real 3-replica plan gives the peer table, replica0's addresses and its peers'
  const plan = planFromInputs([{ name: 'check', replicas: 3, provider: 'netns' }]);
  writeFileSync(join(rootfs, 'el/peers.table'), peerTable(plan));
  const modules: string[] = [];
  const skippedModules: string[] = [];
  for (const m of GUEST_MODULES) {
    const candidates = [m, `${m}.xz`, `${m}.zst`].map((c) => join(modulesDir, c));
    const found = candidates.find((c) => existsSync(c));
    if (!found) {
      skippedModules.push(basename(m));
      continue; // built in (the config check said so), or the guest says it is missing
    }
    const dst = join(rootfs, 'mod', basename(m));
    // busybox insmod wants a plain .ko
    if (found.endsWith('.xz')) await runner.run(['sh', '-c', `xz -dc ${JSON.stringify(found)} > ${JSON.stringify(dst)}`]);
    else if (found.endsWith('.zst')) await runner.run(['zstd', '-qdf', found, '-o', dst]);
    else copyFileSync(found, dst);
    modules.push(`/mod/${basename(m)}`);
  }
  const [r0, ...rest] = replicas(plan);
  const node = (n: typeof r0) => ({ index: n!.index, mac: n!.mac, ip: n!.ip, port: n!.port });
  writeFileSync(join(rootfs, 'init'), guestInit({ me: node(r0), peers: rest.map(node), prefix: plan.network.prefix, modules, objects }));
  chmodSync(join(rootfs, 'init'), 0o755);
  await runner.run(['sh', '-c', `cd ${JSON.stringify(rootfs)} && find . | cpio -o -H newc --quiet | gzip -1 > ../initramfs.gz`]);
  return { modules, skippedModules };
}

/** Why a boot that never reached /init did not, in words that name the fix. */
export function noBootDiagnosis(accel: 'kvm' | 'tcg', seconds: number, consoleText: string): string {
  const printed = consoleText.replace(/\r/g, '').trim();
  if (accel === 'kvm') {
    return `the guest did not reach its /init within ${seconds} s under KVM${printed ? '' : ' and printed nothing on the serial console'}: this host's /dev/kvm cannot boot stock kernels (on our machines it is a PVM backend); run without ELECTRODE_LAB_KVM=1 to use software emulation`;
  }
  const last = printed.split('\n').slice(-3).join(' | ');
  return `the guest did not reach its /init within ${seconds} s under software emulation${last ? ` (last console lines: ${last})` : ' and printed nothing on the serial console'}: check that the image is an x86_64 kernel with a serial console (CONFIG_SERIAL_8250_CONSOLE) and initramfs support, or raise the deadline`;
}

/** Boots `kernel` with the check's initramfs and reports what worked there. */
export async function runKernelCheck(o: KernelCheckOptions): Promise<KernelCheckResult> {
  const root = o.root ?? projectRoot();
  const release = bzImageRelease(readFileSync(o.kernel));
  if (!release) throw new LabError(`${o.kernel} is not an x86 bzImage (no 'HdrS' setup header); pass a vmlinuz file`, 'KERNEL_NOT_BZIMAGE');
  const modulesDir = modulesDirFor(o.kernel, o.modulesDir);
  const config = kernelConfigCheck(o.kernel, { ...(o.configFile ? { configFile: o.configFile } : {}), modulesDir });
  const objects = bpfObjects(root);
  const dir = mkdtempSync(join(tmpdir(), 'el-kernel-check-'));
  const accel = kvmUsable() ? 'kvm' : 'tcg';
  const bootDeadlineMs = o.bootDeadlineMs ?? (accel === 'kvm' ? 30_000 : 180_000);
  try {
    o.onStep?.(`config: ${config.source ?? 'none found'}${config.notes.length ? `; ${config.notes.join('; ')}` : ''}`);
    o.onStep?.(`initramfs for ${release} (modules from ${existsSync(modulesDir) ? modulesDir : 'none: built-in only'}; ${objects.length} objects)`);
    const staged = await stage(o.runner, dir, root, modulesDir, objects);
    o.onStep?.(`boot ${release} under qemu (${accel}), deadline ${bootDeadlineMs / 1000} s to reach /init${staged.skippedModules.length ? `; not found as modules: ${staged.skippedModules.join(', ')}` : ''}`);
    const t0 = performance.now();
    // a deadline on reaching /init, not a sleep: the guest says so on its console
    const abort = new AbortController();
    const onOuter = () => abort.abort();
    o.signal?.addEventListener('abort', onOuter, { once: true });
    let seen = '';
    let booted = false;
    const timer = setTimeout(() => {
      if (!booted) abort.abort();
    }, bootDeadlineMs);
    let q;
    try {
      q = await o.runner.run(
        ['qemu-system-x86_64', '-accel', accel, '-m', '512', '-smp', '1', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-nic', 'none', '-no-reboot',
          '-kernel', o.kernel, '-initrd', join(dir, 'initramfs.gz'), '-append', 'console=ttyS0 panic=-1 quiet'],
        {
          check: false,
          timeoutMs: o.timeoutMs ?? 300_000,
          signal: abort.signal,
          onStdout: (chunk) => {
            seen += chunk;
            if (!booted && seen.includes('EL-GUEST release')) booted = true;
          },
        },
      );
    } finally {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onOuter);
    }
    const bootSeconds = (performance.now() - t0) / 1000;
    const consoleText = q.stdout + (q.stderr ? `\n--- qemu stderr ---\n${q.stderr}` : '');
    writeFileSync(join(dir, 'console.log'), consoleText);
    const report = parseGuestConsole(q.stdout);
    report.notes.push(...config.notes);
    // a guest that never reached /init: the one diagnosis, not every step it did not reach
    const problems = !booted && !report.release && !o.signal?.aborted ? [noBootDiagnosis(accel, Math.round(bootDeadlineMs / 1000), q.stdout)] : reportProblems(report, objects);
    if (!booted && !report.release) {
      /* diagnosed above */
    } else if (q.signal && !report.done) problems.push(o.signal?.aborted ? 'interrupted' : `qemu did not finish within ${(o.timeoutMs ?? 300_000) / 1000}s (${q.signal})`);
    else if (q.exitCode !== 0 && !report.done) problems.push(`qemu exited ${q.exitCode}: ${q.stderr.trim().split('\n').at(-1) ?? ''}`);
    return { kernel: o.kernel, release, accel, config, report, problems, console: consoleText, bootSeconds, ...(o.keep ? { stagingDir: dir } : {}) };
  } finally {
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** The human summary of a check: per object, per fast path, then the problems. */
export function formatKernelCheck(res: KernelCheckResult): string {
  const r = res.report;
  const out = [`kernel ${res.release} (${res.kernel}), qemu ${res.accel}, ${res.bootSeconds.toFixed(1)} s; config ${res.config.source ?? 'not found'}`];
  for (const l of r.loads) out.push(`  verifier  ${l.object}: ${l.ok ? 'accepted' : 'REJECTED'}`);
  if (r.attach && 'ok' in r.attach) out.push(`  attach    ${r.attach.ok ? `ok (XDP ${r.xdp ?? '?'}, TC egress ${r.tcEgress ? 'yes' : 'no'}, fast paths loaded: ${r.attached?.loaded ?? '?'})` : 'FAILED'}; detach ${r.detach ? 'ok' : 'FAILED'}, pins left ${r.pinsLeft ?? '?'}`);
  if (r.stats) for (const c of COUNTER_CHECKS) out.push(`  ${c.path.padEnd(9)} ${c.ok(r.stats, r) ? 'works' : 'DID NOT WORK'}: ${c.what}`);
  for (const n of r.notes) out.push(`  note      ${n}`);
  if (res.stagingDir) out.push(`  kept      ${res.stagingDir} (initramfs.gz, console.log)`);
  out.push(res.problems.length ? `\nproblems:\n${res.problems.map((p) => `- ${p}`).join('\n')}` : 'the fast paths load, pass the verifier, attach natively and work on this kernel');
  return out.join('\n');
}
