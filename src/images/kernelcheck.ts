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
 * Pure parts are exported for the unit tests: the config and the feature
 * check (kernelConfig.ts), the init script and the console's reading
 * (kernelGuest.ts), the release from a bzImage and ldd output (here);
 * runKernelCheck is the edge.
 */
import { accessSync, chmodSync, closeSync, constants, copyFileSync, openSync, readSync, statSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Diagnostic, LabError } from '../core/diagnostics.js';
import { projectRoot } from '../edges/paths.js';
import { bpfBuildDir, bpfObject, loaderPath, probePath } from '../edges/build.js';
import { planFromInputs, replicas } from '../core/plan.js';
import { kvmUsable, missingTools, Tool, which } from '../edges/probe.js';
import { peerTable } from '../core/render.js';
import { Runner } from '../edges/runner.js';
import { checkKernelFeatures, ConfigCheck, configCandidates, GUEST_MODULES, parseKernelConfig } from './kernelConfig.js';
import { COUNTER_CHECKS, GuestReport, guestInit, parseGuestConsole, reportProblems } from './kernelGuest.js';

export * from './kernelConfig.js';
export * from './kernelGuest.js';

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
