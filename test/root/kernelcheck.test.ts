/**
 * check-kernel: the fast paths against ANOTHER kernel's verifier, attached and
 * driven there.
 *
 * The reference check is the paper's kernel: ../shared/kernels/vmlinuz-5.8.1
 * (Linux 5.8.1 built from source with everything the check needs built in;
 * absent from a user's clone, then those tests skip saying so). The same run
 * covers this host's /boot kernel (Debian 12's 6.1, the debian12 box's).
 * Both boot under qemu with software emulation and a generated initramfs.
 * Two negative checks prove the gate catches what it exists for: the fast
 * reply as it was before the 5.8.1 fix is rejected by 5.8.1 (and only that
 * object: the other fast paths still work), and the dispatcher without the
 * asm bound on the UDP length is rejected by 6.1.
 */
import { execa } from 'execa';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bzImageRelease, checkKernelFeatures, configCandidates, COUNTER_CHECKS, guestInit, lddPaths, listHostKernels, noBootDiagnosis, parseGuestConsole, parseKernelConfig, reportProblems, runKernelCheck,
} from '../../src/images/kernelcheck.js';
import { which } from '../../src/edges/probe.js';
import { ExecaRunner } from '../../src/edges/runner.js';
import { isRoot, ROOT } from '../helpers/bpf.helpers.js';

const cli = join(ROOT, 'dist', 'src', 'cli.js');
const hostKernel = listHostKernels()[0];
const SHARED_KERNEL = join(ROOT, '..', 'shared', 'kernels', 'vmlinuz-5.8.1');
const haveShared = existsSync(SHARED_KERNEL);
const tools = Boolean(which('qemu-system-x86_64')) && Boolean(which('busybox')) && Boolean(which('cpio'));
const canBoot = isRoot && tools;
const OBJS = ['el_xdp.bpf.o', 'el_broadcast.bpf.o', 'el_impair.bpf.o', 'el_pass.bpf.o', 'el_quorum.bpf.o', 'el_reply.bpf.o', 'el_tc.bpf.o'];
const tmp = mkdtempSync(join(tmpdir(), 'el-kcheck-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

if (!haveShared) console.log(`[check-kernel] skipping the Linux 5.8.1 checks: ${SHARED_KERNEL} is absent (it ships with the developers' ../shared folder, not with a clone)`);

const counters = (over: Record<string, Partial<Record<string, number>>> = {}) => {
  const z = { seen: 0, passed: 0, dropped: 0, cloned: 0, replied: 0, fallback: 0, full: 0, errors: 0 };
  const base: Record<string, Record<string, number>> = { dispatch: { ...z }, broadcast: { ...z, cloned: 1 }, quorum: { ...z, passed: 1, dropped: 1 }, reply: { ...z, replied: 1 }, egress: { ...z } };
  for (const [k, v] of Object.entries(over)) base[k] = { ...base[k]!, ...v } as Record<string, number>;
  return JSON.stringify(base);
};

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

  it('says what a kernel lacks from its config before booting it: built in, as a module, missing, or only a note', () => {
    const cfg = parseKernelConfig('CONFIG_BPF_SYSCALL=y\nCONFIG_BLK_DEV_INITRD=y\nCONFIG_RD_GZIP=y\nCONFIG_SERIAL_8250_CONSOLE=y\nCONFIG_VETH=m\nCONFIG_NET_CLS_BPF=y\n# CONFIG_NET_SCH_INGRESS is not set\nCONFIG_BPF_JIT=y\n');
    expect(cfg.get('CONFIG_VETH')).toBe('m');
    expect(cfg.has('CONFIG_NET_SCH_INGRESS')).toBe(false);
    const withVeth = checkKernelFeatures('5.8.1', cfg, 'config-5.8.1', (m) => m.endsWith('veth.ko'));
    expect(withVeth.missing.map((d) => `${d.code} ${d.subject}`)).toEqual(['KERNEL_FEATURE_MISSING CONFIG_NET_SCH_INGRESS']);
    expect(withVeth.missing[0]!.message).toContain('the clsact qdisc');
    expect(withVeth.notes.join('\n')).toMatch(/no kernel BTF .*fine: our objects use no CO-RE/);
    const noModules = checkKernelFeatures('5.8.1', cfg, 'config-5.8.1', () => false);
    expect(noModules.missing.map((d) => d.code)).toEqual(['KERNEL_MODULE_MISSING', 'KERNEL_FEATURE_MISSING']);
    expect(noModules.missing[0]!.hint).toContain('--modules');
    // before the ring buffer (5.8): said, not refused (the other fast paths can load)
    expect(checkKernelFeatures('5.4.0', cfg, 'c', () => true).notes[0]).toMatch(/Linux 5\.4\.0 has no BPF ring buffer \(5\.8\+\): the fast reply cannot load/);
    expect(checkKernelFeatures('5.8.1', undefined, undefined, () => true).notes[0]).toMatch(/no config found/);
    expect(configCandidates('/k/vmlinuz-5.8.1-vm', '5.8.1')).toEqual(['/k/config-5.8.1-vm', '/k/config-5.8.1', '/boot/config-5.8.1']);
    expect(configCandidates('/k/vmlinuz', '6.1', '/my/.config')).toEqual(['/my/.config']);
  });

  it('the init script loads every object on its own, attaches all fast paths natively, sends frames through each, and powers off', () => {
    const me = { index: 0, mac: '02:4c:00:00:00:00', ip: '10.77.0.10', port: 51000 };
    const peers = [{ index: 1, mac: '02:4c:00:00:00:01', ip: '10.77.0.11', port: 51001 }, { index: 2, mac: '02:4c:00:00:00:02', ip: '10.77.0.12', port: 51002 }];
    const s = guestInit({ me, peers, prefix: 24, modules: ['/mod/veth.ko'], objects: OBJS });
    expect(s.startsWith('#!/bin/busybox sh\n')).toBe(true);
    for (const o of OBJS) expect(s).toContain(`bpftool prog loadall /el/${o}`);
    expect(s).toContain('insmod /mod/veth.ko');
    expect(s).toMatch(/el-loader attach .*--broadcast --quorum --reply --xdp-mode native --json/);
    expect(s).toMatch(/el-probe udp --src 10\.77\.0\.10,51000 --dst 10\.77\.0\.11,51001 --type 3 --flags 1/);
    expect(s).toMatch(/el-probe raw --ifname el1 --src 02:4c:00:00:00:01,10\.77\.0\.11,51001 --dst 02:4c:00:00:00:00,10\.77\.0\.10,51000 --type 4/);
    expect(s).toMatch(/el-loader ctrl .*--view 1 --status 0 --lease-ms \d+ --fr-view 1 --fr-last-op 0/);
    expect(s.trimEnd().endsWith('poweroff -f')).toBe(true);
  });

  it('parses the console, keeps the verifier log of a rejected object and names every problem', () => {
    const con = [
      'Booting from ROM..',
      'EL-GUEST release 5.8.1',
      'EL-GUEST load el_xdp.bpf.o 0',
      'EL-GUEST load el_reply.bpf.o 255',
      'EL-LOG-BEGIN load-el_reply.bpf.o',
      '335: (73) *(u8 *)(r5 +0) = r1',
      "R5 invalid mem access 'inv'",
      'EL-LOG-END load-el_reply.bpf.o',
      'EL-GUEST attach 0',
      'EL-LOG-BEGIN attach-json',
      JSON.stringify({ enabled: 'broadcast,quorum', loaded: 'broadcast,quorum', objects: [{ object: 'el_reply', loaded: false, meaning: 'a pointer lost its type' }] }),
      'EL-LOG-END attach-json',
      'EL-GUEST xdp native',
      'EL-GUEST tc-egress yes',
      'EL-GUEST probe broadcast 0',
      'EL-GUEST probe reply 0',
      'EL-GUEST drained 0',
      'EL-GUEST stats 0',
      'EL-LOG-BEGIN stats',
      counters({ reply: { replied: 0 }, dispatch: { errors: 2 } }),
      'EL-LOG-END stats',
      'EL-GUEST detach 0',
      'EL-GUEST pins-left 0',
      'EL-GUEST done',
    ].join('\r\n');
    const rep = parseGuestConsole(con);
    expect(rep.release).toBe('5.8.1');
    expect(rep.loads).toEqual([{ object: 'el_xdp.bpf.o', ok: true }, { object: 'el_reply.bpf.o', ok: false, log: "335: (73) *(u8 *)(r5 +0) = r1\nR5 invalid mem access 'inv'" }]);
    expect(rep.attached?.loaded).toBe('broadcast,quorum');
    expect(rep.stats?.quorum?.dropped).toBe(1);
    const p = reportProblems(rep, ['el_xdp.bpf.o', 'el_reply.bpf.o']);
    expect(p).toEqual([
      "el_reply.bpf.o: rejected by the 5.8.1 verifier:\n335: (73) *(u8 *)(r5 +0) = r1\nR5 invalid mem access 'inv'",
      'el-loader left out el_reply: a pointer lost its type',
      expect.stringMatching(/^reply: counters did not move: expected reply\.replied >= 1/),
      'errors counted: dispatch 2',
    ]);
    // a good run has no problems at all, and each path's check can fail on its own
    const good = parseGuestConsole(con.replace(/EL-GUEST load el_reply.bpf.o 255/, 'EL-GUEST load el_reply.bpf.o 0').replace(/\{"enabled".*\}/, JSON.stringify({ enabled: 'broadcast,quorum,reply', loaded: 'broadcast,quorum,reply', objects: [] })).replace(/EL-GUEST drained 0/, 'EL-GUEST drained 1').replace(/\{"dispatch".*\}/, counters()));
    expect(reportProblems(good, ['el_xdp.bpf.o'])).toEqual([]);
    for (const c of COUNTER_CHECKS) expect(c.ok(JSON.parse(counters({ [c.path]: { cloned: 0, passed: 0, replied: 0 } })), good)).toBe(false);
  });

  it('a guest that never reached /init is diagnosed with the fix, for KVM and for software emulation', () => {
    expect(reportProblems(parseGuestConsole('Kernel panic - not syncing: VFS'), OBJS)[0]).toMatch(/did not boot to our \/init/);
    expect(noBootDiagnosis('kvm', 30, '')).toMatch(/within 30 s under KVM and printed nothing on the serial console: this host's \/dev\/kvm cannot boot stock kernels .*run without ELECTRODE_LAB_KVM=1 to use software emulation/);
    expect(noBootDiagnosis('tcg', 180, 'Booting the kernel.\nKernel panic')).toMatch(/under software emulation \(last console lines: Booting the kernel\. \| Kernel panic\)/);
  });
});

/** A copy of bpf/ (with native/include beside it, as in the repo) where `edit` changes the sources, built like `make -C bpf`. */
async function variant(name: string, edit: (bpfDir: string) => void): Promise<string> {
  const root = join(tmp, name);
  mkdirSync(join(root, 'native'), { recursive: true });
  cpSync(join(ROOT, 'bpf'), join(root, 'bpf'), { recursive: true, filter: (src) => !src.includes(`${join(ROOT, 'bpf', 'build')}`) });
  symlinkSync(join(ROOT, 'native', 'include'), join(root, 'native', 'include'));
  edit(join(root, 'bpf'));
  const r = await execa('make', ['-s', '-C', join(root, 'bpf')], { reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
  return root;
}

describe.skipIf(!canBoot || !haveShared)('check-kernel on Linux 5.8.1, the paper\'s kernel (../shared/kernels, software emulation)', () => {
  it('every object passes the 5.8.1 verifier, every fast path attaches natively on a veth and its counters move; detach leaves no pins', async () => {
    const res = await runKernelCheck({ kernel: SHARED_KERNEL, runner: new ExecaRunner() });
    expect(res.problems, res.console.slice(-3000)).toEqual([]);
    expect(res.release).toBe('5.8.1');
    expect(res.config.source).toMatch(/config-5\.8\.1$/);
    expect(res.report.loads.map((l) => [l.object, l.ok])).toEqual(OBJS.map((o) => [o, true]));
    expect(res.report.attached?.loaded).toBe('broadcast,quorum,reply');
    expect(res.report.xdp).toBe('native');
    expect(res.report.stats?.broadcast?.cloned).toBeGreaterThanOrEqual(1);
    expect(res.report.stats?.quorum?.passed).toBeGreaterThanOrEqual(1);
    expect(res.report.stats?.reply?.replied).toBeGreaterThanOrEqual(1);
    expect(res.report.drained).toBe(1);
    expect(res.report.pinsLeft).toBe(0);
    console.log(`[check-kernel] ${res.release} under ${res.accel}: ${res.bootSeconds.toFixed(1)} s`);
  }, 400_000);

  it('catches the bug it was built for: the fast reply writing through a spilled bpf_ringbuf_reserve() pointer is rejected by 5.8.1, and ONLY it: broadcast and quorum still attach and work', async () => {
    const root = await variant('reserve', (dir) => copyFileSync(join(ROOT, 'test', 'fixtures', 'bpf', 'el_reply_reserve.bpf.c'), join(dir, 'el_reply.bpf.c')));
    const res = await runKernelCheck({ kernel: SHARED_KERNEL, runner: new ExecaRunner(), root });
    const load = res.report.loads.find((l) => l.object === 'el_reply.bpf.o');
    expect(load?.ok).toBe(false);
    expect(load?.log).toMatch(/invalid mem access 'inv'/);
    // the loader names the cause, not a kernel version
    const left = res.report.attached?.objects.find((o) => o.object === 'el_reply');
    expect(left).toMatchObject({ loaded: false });
    expect(left?.meaning).toMatch(/a pointer lost its type: .*spilled to the stack .*PTR_TO_MEM/);
    expect(res.report.attached?.loaded).toBe('broadcast,quorum');
    expect(res.report.stats?.broadcast?.cloned).toBeGreaterThanOrEqual(1);
    expect(res.report.stats?.quorum?.dropped).toBeGreaterThanOrEqual(1);
    expect(res.problems.join('\n')).toMatch(/reply: counters did not move/);
    expect(res.problems.join('\n')).not.toMatch(/broadcast: counters|quorum: counters/);
  }, 400_000);

  it('a boot that never reaches /init ends at its deadline with a diagnosis instead of hanging', async () => {
    const res = await runKernelCheck({ kernel: SHARED_KERNEL, runner: new ExecaRunner(), bootDeadlineMs: 1 });
    expect(res.problems).toHaveLength(1);
    expect(res.problems[0]).toMatch(/did not reach its \/init within 0 s under (software emulation|KVM)/);
  }, 120_000);
});

describe.skipIf(!canBoot || !hostKernel)(`check-kernel on this host's ${hostKernel ?? 'no /boot kernel'} (software emulation)`, () => {
  it('the fast paths pass that kernel\'s verifier, attach natively on a veth there and work; detach leaves no pins', async () => {
    const res = await runKernelCheck({ kernel: hostKernel!, runner: new ExecaRunner() });
    expect(res.problems, res.console.slice(-3000)).toEqual([]);
    expect(res.report.loads.map((l) => [l.object, l.ok])).toEqual(OBJS.map((o) => [o, true]));
    expect(res.report.xdp).toBe('native');
    expect(res.report.tcEgress).toBe(true);
    expect(res.report.pinsLeft).toBe(0);
    console.log(`[check-kernel] ${res.release} under ${res.accel}: ${res.bootSeconds.toFixed(1)} s`);
  }, 400_000);

  it('without the asm bound on the UDP length, that verifier rejects the dispatcher, and the loader says no fast path can attach', async () => {
    const root = await variant('unbounded', (dir) => {
      const file = join(dir, 'el_common.h');
      const src = readFileSync(file, 'utf8');
      const unbounded = src.replace('asm volatile("%[v] &= 0xffff" : [v] "+r"(v));', '');
      expect(unbounded).not.toBe(src);
      writeFileSync(file, unbounded);
    });
    const res = await runKernelCheck({ kernel: hostKernel!, runner: new ExecaRunner(), root });
    const load = res.report.loads.find((l) => l.object === 'el_xdp.bpf.o');
    expect(load?.ok).toBe(false);
    expect(load?.log).toMatch(/unbounded min value/);
    expect(res.problems.join('\n')).toMatch(/el_xdp\.bpf\.o: rejected by the .* verifier/);
    expect(res.report.loads.find((l) => l.object === 'el_pass.bpf.o')?.ok).toBe(true);
    expect(res.report.attach).toMatchObject({ ok: false });
    const log = res.report.attach && 'log' in res.report.attach ? res.report.attach.log : '';
    expect(log).toMatch(/unbounded min value/);
    expect(log).toMatch(/el_xdp was rejected .*value whose range this verifier lost.*no fast path can attach/);
  }, 400_000);

  it('the CLI prints the verdict and exits 0; an unknown kernel file exits 2 naming the kernels it has; a config lacking a feature exits 2 before booting', async () => {
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
    const noClsact = join(tmp, 'config-no-clsact');
    writeFileSync(noClsact, readFileSync(`/boot/config-${bzImageRelease(readFileSync(hostKernel!))}`, 'utf8').replace(/^CONFIG_NET_SCH_INGRESS=.*$/m, '# CONFIG_NET_SCH_INGRESS is not set'));
    const lacking = await execa('node', [cli, 'check-kernel', '--kernel', hostKernel!, '--config', noClsact], { reject: false });
    expect(lacking.exitCode, lacking.stderr).toBe(2);
    expect(lacking.stderr).toMatch(/KERNEL_FEATURE_MISSING CONFIG_NET_SCH_INGRESS: .* lacks the clsact qdisc/);
    const ok = await execa('node', [cli, 'check-kernel', '--json'], { reject: false });
    expect(ok.exitCode, ok.stderr).toBe(0);
    const j = JSON.parse(ok.stdout) as { ok: boolean; release: string; report: { xdp: string } };
    expect(j.ok).toBe(true);
    expect(j.report.xdp).toBe('native');
  }, 400_000);
});
