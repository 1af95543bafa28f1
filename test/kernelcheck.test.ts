/**
 * check-kernel: the fast paths against ANOTHER kernel's verifier.
 *
 * The real part boots this host's oldest /boot/vmlinuz (Debian 12's 6.1, the
 * debian12 box's kernel; `linux-image-amd64` in .ci/packages.txt) under qemu
 * with software emulation (KVM when it works) and a generated initramfs. It
 * also proves the check catches the bug it was built for: a copy of
 * electrode.bpf.c without the asm bound on the UDP length loads on 6.18 but
 * is rejected by 6.1's verifier.
 */
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bzImageRelease, guestInit, lddPaths, listHostKernels, parseGuestConsole, reportProblems, runKernelCheck } from '../src/kernelcheck.js';
import { kvmUsable, which } from '../src/probe.js';
import { ExecaRunner } from '../src/runner.js';
import { isRoot, ROOT } from './bpf.helpers.js';

const cli = join(ROOT, 'dist', 'src', 'cli.js');
const hostKernel = listHostKernels()[0];
const canBoot = isRoot && Boolean(hostKernel) && Boolean(which('qemu-system-x86_64')) && Boolean(which('busybox')) && Boolean(which('cpio'));
const OBJS = ['electrode.bpf.o', 'el_pass.bpf.o'];

describe('check-kernel: pure parts', () => {
  it('reads the release from a bzImage setup header, and refuses other files', () => {
    const img = Buffer.alloc(0x400);
    img.write('HdrS', 0x202, 'latin1');
    img.writeUInt16LE(0x100, 0x20e); // string at 0x300
    img.write('5.8.0-050800-generic (kernel@gloin) #202008022230 SMP\0', 0x300, 'latin1');
    expect(bzImageRelease(img)).toBe('5.8.0-050800-generic');
    expect(bzImageRelease(Buffer.from('#!/bin/sh\necho not a kernel\n'))).toBeUndefined();
    const noMagic = Buffer.from(img);
    noMagic.write('XXXX', 0x202, 'latin1');
    expect(bzImageRelease(noMagic)).toBeUndefined();
  });

  it.skipIf(!hostKernel || !isRoot)('reads the release of the real /boot kernel', () => {
    const rel = bzImageRelease(readFileSync(hostKernel!));
    expect(hostKernel).toContain(`vmlinuz-${rel}`);
  });

  it('collects library paths from ldd output', () => {
    const out = '\tlinux-vdso.so.1 (0x00007ffd)\n\tlibelf.so.1 => /lib/x86_64-linux-gnu/libelf.so.1 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x1)\n';
    expect(lddPaths(out)).toEqual(['/lib/x86_64-linux-gnu/libelf.so.1', '/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/libz.so.1']);
  });

  it('the init script loads every object, attaches natively with all fast paths and powers off', () => {
    const s = guestInit({ mac: '02:4c:00:00:00:00', index: 0, modules: ['/mod/veth.ko'], objects: OBJS });
    expect(s.startsWith('#!/bin/busybox sh\n')).toBe(true);
    for (const o of OBJS) expect(s).toContain(`bpftool prog loadall /el/${o}`);
    expect(s).toContain('insmod /mod/veth.ko');
    expect(s).toMatch(/el-loader attach .*--broadcast --quorum --reply --xdp-mode native/);
    expect(s.trimEnd().endsWith('poweroff -f')).toBe(true);
  });

  it('parses the console, keeps the verifier log of a rejected object and names the problems', () => {
    const con = [
      'Booting from ROM..',
      'EL-GUEST release 6.1.0-56-amd64',
      'EL-GUEST load electrode.bpf.o 255',
      'EL-LOG-BEGIN load-electrode.bpf.o',
      '73: (07) r3 += 34',
      'math between pkt pointer and register with unbounded min value is not allowed',
      'EL-LOG-END load-electrode.bpf.o',
      'EL-GUEST load el_pass.bpf.o 0',
      'EL-GUEST attach 1',
      'EL-LOG-BEGIN attach',
      'el-loader: load failed',
      'EL-LOG-END attach',
      'EL-GUEST xdp none',
      'EL-GUEST tc-egress no',
      'EL-GUEST done',
    ].join('\r\n');
    const rep = parseGuestConsole(con);
    expect(rep.release).toBe('6.1.0-56-amd64');
    expect(rep.loads).toEqual([
      { object: 'electrode.bpf.o', ok: false, log: '73: (07) r3 += 34\nmath between pkt pointer and register with unbounded min value is not allowed' },
      { object: 'el_pass.bpf.o', ok: true },
    ]);
    expect(rep.attach).toEqual({ ok: false, log: 'el-loader: load failed' });
    const p = reportProblems(rep, OBJS);
    expect(p[0]).toMatch(/electrode\.bpf\.o: rejected by the 6\.1\.0-56-amd64 verifier:[\s\S]*unbounded min value/);
    expect(p[1]).toMatch(/^attach failed:\nel-loader: load failed/);
    expect(p).toHaveLength(2);
  });

  it('a guest that never reached /init is reported as such', () => {
    const p = reportProblems(parseGuestConsole('Kernel panic - not syncing: VFS'), OBJS);
    expect(p[0]).toMatch(/did not boot to our \/init/);
  });
});

describe.skipIf(!canBoot)(`check-kernel: boots ${hostKernel ?? 'no /boot kernel'} under qemu (${kvmUsable() ? 'KVM' : 'software emulation: no KVM here'})`, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'el-kcheck-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('the fast paths pass that kernel\'s verifier and attach natively on a veth there; detach leaves no pins', async () => {
    const res = await runKernelCheck({ kernel: hostKernel!, runner: new ExecaRunner() });
    expect(res.problems, res.console.slice(-3000)).toEqual([]);
    expect(res.release).toMatch(/^\d+\.\d+/);
    expect(res.report.loads.map((l) => [l.object, l.ok])).toEqual(OBJS.map((o) => [o, true]));
    expect(res.report.xdp).toBe('native');
    expect(res.report.tcEgress).toBe(true);
    expect(res.report.pinsLeft).toBe(0);
    console.log(`[check-kernel] ${res.release} under ${res.accel}: ${res.bootSeconds.toFixed(1)} s`);
  }, 400_000);

  it('catches the bug it exists for: without the asm bound on the UDP length, that verifier rejects el_xdp_dispatch', async () => {
    // a copy of the real source with only the bound16() mask removed, built like `make -C bpf` does
    const src = readFileSync(join(ROOT, 'bpf', 'electrode.bpf.c'), 'utf8');
    const unbounded = src.replace('asm volatile("%[v] &= 0xffff" : [v] "+r"(v));', '');
    expect(unbounded).not.toBe(src);
    // same relative includes as in the repo: <tmp>/root/bpf/x.c sees ../native/include and el_bpf.h
    const root = join(tmp, 'root');
    mkdirSync(join(root, 'bpf', 'build'), { recursive: true });
    mkdirSync(join(root, 'native'), { recursive: true });
    symlinkSync(join(ROOT, 'native', 'include'), join(root, 'native', 'include'));
    copyFileSync(join(ROOT, 'bpf', 'el_bpf.h'), join(root, 'bpf', 'el_bpf.h'));
    const copy = join(root, 'bpf', 'electrode.bpf.c');
    writeFileSync(copy, unbounded);
    const arch = (await execa('uname', ['-m'])).stdout.trim();
    await execa('clang', ['-O2', '-g', '-target', 'bpf', '-mcpu=v2', '-Wall', '-Werror', '-I', `/usr/include/${arch}-linux-gnu`, '-c', copy, '-o', join(root, 'bpf', 'build', 'electrode.bpf.o')]);
    for (const f of ['el-loader', 'el_pass.bpf.o']) copyFileSync(join(ROOT, 'bpf', 'build', f), join(root, 'bpf', 'build', f));
    const res = await runKernelCheck({ kernel: hostKernel!, runner: new ExecaRunner(), root });
    const load = res.report.loads.find((l) => l.object === 'electrode.bpf.o');
    expect(load?.ok).toBe(false);
    expect(load?.log).toMatch(/unbounded min value/);
    expect(res.problems.join('\n')).toMatch(/electrode\.bpf\.o: rejected by the .* verifier/);
    expect(res.report.loads.find((l) => l.object === 'el_pass.bpf.o')?.ok).toBe(true);
    // el-loader fails the same way and shows the verdict (libbpf gives the log as one long message)
    expect(res.report.attach).toMatchObject({ ok: false });
    expect(res.report.attach && 'log' in res.report.attach ? res.report.attach.log : '').toMatch(/unbounded min value/);
  }, 400_000);

  it('the CLI prints the verdict and exits 0; an unknown kernel file exits 2 naming the kernels it has', async () => {
    expect(existsSync(cli), 'run `npm run build` first').toBe(true);
    const bad = await execa('node', [cli, 'check-kernel', '--kernel', join(tmp, 'no-such-vmlinuz')], { reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('no such kernel image');
    expect(bad.stderr).toContain(hostKernel!);
    for (const notImage of ['/etc/passwd', '/etc']) {
      const r = await execa('node', [cli, 'check-kernel', '--kernel', notImage], { reject: false });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toContain(`KERNEL_NOT_BZIMAGE ${notImage}: not an x86 bzImage`);
    }
    const ok = await execa('node', [cli, 'check-kernel', '--json'], { reject: false });
    expect(ok.exitCode, ok.stderr).toBe(0);
    const j = JSON.parse(ok.stdout) as { ok: boolean; release: string; report: { xdp: string } };
    expect(j.ok).toBe(true);
    expect(j.report.xdp).toBe('native');
  }, 400_000);
});
