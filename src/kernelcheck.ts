/**
 * `electrode-lab check-kernel`: do the fast paths load, pass the verifier and
 * attach on ANOTHER kernel than the host's, e.g. Debian 12's 6.1 (the
 * debian12 box) or a 5.8 vmlinuz taken from Ubuntu's mainline package?
 *
 * Boots the kernel image directly under qemu (-kernel, no disk, no network)
 * with a throw-away initramfs holding busybox, bpftool, iproute2, our loader,
 * the eBPF objects and the kernel's own veth/clsact/cls_bpf modules. Its
 * /init loads every program (bpftool prog loadall: the guest's verifier),
 * attaches all fast paths to a veth with native XDP + TC egress the way a
 * replica gets them, reads the counters, detaches, and reports on the
 * serial console. Seconds with KVM, ~20-40 s under software emulation.
 *
 * Pure parts (version from a bzImage, the init script, parsing the console,
 * ldd output) are exported for the unit tests; runKernelCheck is the edge.
 */
import { accessSync, chmodSync, closeSync, constants, copyFileSync, openSync, readSync, statSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Diagnostic, LabError } from './diagnostics.js';
import { projectRoot } from './paths.js';
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

export interface GuestSetup {
  /** veth MACs and the node index for the attach, from a real plan. */
  mac: string;
  index: number;
  /** Module files inside the initramfs, in load order. */
  modules: string[];
  objects: string[];
}

/** The initramfs /init: each step reports `EL-GUEST <key> <value>` on the console. */
export function guestInit(s: GuestSetup): string {
  const pin = '/sys/fs/bpf/electrode-lab/check/replica0';
  return `#!/bin/busybox sh
# electrode-lab check-kernel: generated, runs as PID 1 in the guest
/bin/busybox --install -s /bin
export PATH=/bin
say() { echo "EL-GUEST $*"; }
log() { echo "EL-LOG-BEGIN $1"; tail -c 6000 "$2"; echo "EL-LOG-END $1"; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
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
  ip link set el0 address ${s.mac} mtu 1500 up && ip link set el1 up
  /el/el-loader attach --pin-dir ${pin} --peers /el/peers.table --index ${s.index} --ifname el0 --broadcast --quorum --reply --xdp-mode native >/tmp/attach.log 2>&1; rc=$?
  say attach $rc
  [ $rc = 0 ] || log attach /tmp/attach.log
  link=$(ip -d link show dev el0)
  case "$link" in *xdpgeneric*) say xdp generic ;; *" xdp "*|*"xdp/"*|*"prog/xdp"*) say xdp native ;; *) say xdp none ;; esac
  tc filter show dev el0 egress | grep -q bpf && say tc-egress yes || say tc-egress no
  /el/el-loader stats --pin-dir ${pin} --json >/tmp/stats.json 2>&1; say stats $?
  /el/el-loader detach --pin-dir ${pin} --ifname el0 >/tmp/detach.log 2>&1; rc=$?
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

export interface GuestReport {
  release?: string;
  loads: { object: string; ok: boolean; log?: string }[];
  attach?: { ok: boolean; log?: string } | { skipped: string };
  xdp?: string;
  tcEgress?: boolean;
  stats?: boolean;
  detach?: boolean;
  pinsLeft?: number;
  notes: string[];
  done: boolean;
}

/** Reads the `EL-GUEST` lines and `EL-LOG-BEGIN/END` blocks from the serial console. */
export function parseGuestConsole(text: string): GuestReport {
  const rep: GuestReport = { loads: [], notes: [], done: false };
  const logs = new Map<string, string>();
  const lines = text.replace(/\r/g, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const lb = /EL-LOG-BEGIN (\S+)/.exec(line);
    if (lb) {
      const body: string[] = [];
      for (i++; i < lines.length && !lines[i]!.includes(`EL-LOG-END ${lb[1]}`); i++) body.push(lines[i]!);
      logs.set(lb[1]!, body.join('\n'));
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
      case 'stats': rep.stats = words[0] === '0'; break;
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
  return rep;
}

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
    if (rep.xdp !== 'native') p.push(`XDP attached in mode '${rep.xdp ?? '?'}', not native`);
    if (!rep.tcEgress) p.push('no TC egress program after attach');
    if (!rep.stats) p.push('el-loader stats failed');
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
  runner: Runner;
  root?: string;
  /** Keep the staging folder (initramfs, console log) for a look; its path is in the result. */
  keep?: boolean;
  timeoutMs?: number;
  onStep?: (what: string) => void;
}

export interface KernelCheckResult {
  kernel: string;
  release: string;
  accel: 'kvm' | 'tcg';
  report: GuestReport;
  problems: string[];
  console: string;
  stagingDir?: string;
  bootSeconds: number;
}

export function kernelCheckPreconditions(opts: { kernel: string; root?: string }): Diagnostic[] {
  const d = missingTools(KERNEL_CHECK_TOOLS);
  if (!existsSync(opts.kernel)) {
    const found = listHostKernels();
    d.push({ code: 'KERNEL_NOT_FOUND', subject: opts.kernel, message: 'no such kernel image', hint: found.length ? `kernels on this host: ${found.join(', ')}` : 'apt-get install linux-image-amd64 (Debian 12: 6.1), or pass the vmlinuz of the kernel your VMs run' });
  }
  else if (!canRead(opts.kernel)) {
    d.push({ code: 'KERNEL_UNREADABLE', subject: opts.kernel, message: 'cannot be read by this user', hint: 'run as root, or pass a readable copy with --kernel' });
  } else if (!statSync(opts.kernel).isFile() || !bzImageRelease(readHead(opts.kernel))) {
    d.push({ code: 'KERNEL_NOT_BZIMAGE', subject: opts.kernel, message: "not an x86 bzImage (no 'HdrS' setup header)", hint: 'pass a vmlinuz file (e.g. /boot/vmlinuz-<release>), not a vmlinux, .deb or initrd' });
  }
  const root = opts.root ?? projectRoot();
  for (const f of ['bpf/build/el-loader', 'bpf/build/electrode.bpf.o', 'bpf/build/el_pass.bpf.o']) {
    if (!existsSync(join(root, f))) d.push({ code: 'NOT_BUILT', subject: f, message: 'missing', hint: 'npm run build (or make -C bpf)' });
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

async function stage(runner: Runner, dir: string, root: string, modulesDir: string): Promise<{ modules: string[]; skippedModules: string[] }> {
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'el', 'mod', 'proc', 'sys', 'tmp', 'dev']) mkdirSync(join(rootfs, d), { recursive: true });
  const bins: [string, string][] = [
    [which('busybox')!, 'bin/busybox'],
    [which('bpftool')!, 'bin/bpftool'],
    [which('ip')!, 'bin/ip'],
    [which('tc')!, 'bin/tc'],
    [join(root, 'bpf/build/el-loader'), 'el/el-loader'],
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
  for (const o of ['electrode.bpf.o', 'el_pass.bpf.o']) copyFileSync(join(root, 'bpf/build', o), join(rootfs, 'el', o));
  // a real 3-replica plan gives the peer table and replica0's MAC
  const plan = planFromInputs([{ name: 'check', replicas: 3, provider: 'netns' }]);
  writeFileSync(join(rootfs, 'el/peers.table'), peerTable(plan));
  const modules: string[] = [];
  const skippedModules: string[] = [];
  for (const m of GUEST_MODULES) {
    const candidates = [m, `${m}.xz`, `${m}.zst`].map((c) => join(modulesDir, c));
    const found = candidates.find((c) => existsSync(c));
    if (!found) {
      skippedModules.push(basename(m));
      continue; // built in, or missing: the guest says which when the step needs it
    }
    const dst = join(rootfs, 'mod', basename(m));
    // busybox insmod wants a plain .ko
    if (found.endsWith('.xz')) await runner.run(['sh', '-c', `xz -dc ${JSON.stringify(found)} > ${JSON.stringify(dst)}`]);
    else if (found.endsWith('.zst')) await runner.run(['zstd', '-qdf', found, '-o', dst]);
    else copyFileSync(found, dst);
    modules.push(`/mod/${basename(m)}`);
  }
  const r0 = replicas(plan)[0]!;
  writeFileSync(join(rootfs, 'init'), guestInit({ mac: r0.mac, index: r0.index, modules, objects: ['electrode.bpf.o', 'el_pass.bpf.o'] }));
  chmodSync(join(rootfs, 'init'), 0o755);
  await runner.run(['sh', '-c', `cd ${JSON.stringify(rootfs)} && find . | cpio -o -H newc --quiet | gzip -1 > ../initramfs.gz`]);
  return { modules, skippedModules };
}

/** Boots `kernel` with the check's initramfs and reports what worked there. */
export async function runKernelCheck(o: KernelCheckOptions): Promise<KernelCheckResult> {
  const root = o.root ?? projectRoot();
  const release = bzImageRelease(readFileSync(o.kernel));
  if (!release) throw new LabError(`${o.kernel} is not an x86 bzImage (no 'HdrS' setup header); pass a vmlinuz file`, 'KERNEL_NOT_BZIMAGE');
  const modulesDir = o.modulesDir ?? join('/lib/modules', release);
  const dir = mkdtempSync(join(tmpdir(), 'el-kernel-check-'));
  const accel = kvmUsable() ? 'kvm' : 'tcg';
  try {
    o.onStep?.(`initramfs for ${release} (modules from ${existsSync(modulesDir) ? modulesDir : 'none: built-in only'})`);
    const staged = await stage(o.runner, dir, root, modulesDir);
    o.onStep?.(`boot ${release} under qemu (${accel})${staged.skippedModules.length ? `; not found as modules: ${staged.skippedModules.join(', ')}` : ''}`);
    const t0 = performance.now();
    const q = await o.runner.run(
      ['qemu-system-x86_64', '-accel', accel, '-m', '512', '-smp', '1', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-nic', 'none', '-no-reboot',
        '-kernel', o.kernel, '-initrd', join(dir, 'initramfs.gz'), '-append', 'console=ttyS0 panic=-1 quiet'],
      { check: false, timeoutMs: o.timeoutMs ?? 300_000 },
    );
    const bootSeconds = (performance.now() - t0) / 1000;
    const consoleText = q.stdout + (q.stderr ? `\n--- qemu stderr ---\n${q.stderr}` : '');
    writeFileSync(join(dir, 'console.log'), consoleText);
    const report = parseGuestConsole(q.stdout);
    const problems = reportProblems(report, ['electrode.bpf.o', 'el_pass.bpf.o']);
    if (q.signal && !report.done) problems.push(`qemu did not finish within ${(o.timeoutMs ?? 300_000) / 1000}s (${q.signal})`);
    else if (q.exitCode !== 0 && !report.done) problems.push(`qemu exited ${q.exitCode}: ${q.stderr.trim().split('\n').at(-1) ?? ''}`);
    return { kernel: o.kernel, release, accel, report, problems, console: consoleText, bootSeconds, ...(o.keep ? { stagingDir: dir } : {}) };
  } finally {
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  }
}
