/**
 * Tier 1-2: the kernel pin. The checksum download is faked (a function
 * returning a CHECKSUMS text, a file:// mirror); the lock file logic, the
 * generated script's verification, hold, GRUB and uname steps run for real
 * (bash, sha256sum, dpkg with a private admin dir, sed on a private
 * /etc/default/grub copy) against files this test creates.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LabError } from '../../src/core/diagnostics.js';
import { HELD_PACKAGES, KERNEL_PINS, kernelInstallScript, kernelPin, parseLock, parseUpstreamChecksums, resolveChecksums, Checksums } from '../../src/images/kernel.js';
import { ExecaRunner } from '../../src/edges/runner.js';
import { DEFAULT_KERNEL } from '../../src/core/spec.js';

const tmp = mkdtempSync(join(tmpdir(), 'el-kernel-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const runner = new ExecaRunner();
const pin = kernelPin(DEFAULT_KERNEL)!;
const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const sha1 = (b: string | Buffer) => createHash('sha1').update(b).digest('hex');

/** Four stand-in .deb files with known content, and their checksums. */
function makeDebs(dir: string): Checksums {
  mkdirSync(dir, { recursive: true });
  const sums: Checksums = new Map();
  for (const f of pin.files) {
    const body = `stand-in for ${f}\n`;
    writeFileSync(join(dir, f), body);
    sums.set(f, sha256(body));
  }
  return sums;
}

function upstreamChecksums(sums: Checksums, dir: string): string {
  const lines = ['# Checksums, check with the command below:', '#     shasum -c CHECKSUMS', '#', '# Checksums-Sha1:'];
  for (const f of pin.files) lines.push(`${sha1(readFileSync(join(dir, f)))}  ${f}`);
  lines.push('#', '# Checksums-Sha256:');
  for (const f of pin.files) lines.push(`${sums.get(f)}  ${f}`);
  return lines.join('\n') + '\n';
}

async function runScript(script: string, args: string[], env: Record<string, string>) {
  const file = join(tmp, `script-${Math.random().toString(36).slice(2)}.sh`);
  writeFileSync(file, script);
  return runner.run(['bash', file, ...args], { check: false, env: { ...process.env, ...env }, timeoutMs: 60_000 });
}

describe('kernel pin data', () => {
  it('pins the four Ubuntu mainline 5.8.0 files of build 202008022230', () => {
    expect(pin.release).toBe('5.8.0-050800-generic');
    expect(pin.files).toHaveLength(4);
    for (const f of pin.files) expect(f).toContain('5.8.0-050800.202008022230');
    expect(pin.grubEntry).toBe('Advanced options for Ubuntu>Ubuntu, with Linux 5.8.0-050800-generic');
    expect(kernelPin('box')).toBeUndefined();
    expect(Object.keys(KERNEL_PINS)).toContain(DEFAULT_KERNEL);
  });

  it('parses the SHA-256 section of CHECKSUMS, not the SHA-1 one', () => {
    const dir = join(tmp, 'parse');
    const sums = makeDebs(dir);
    const parsed = parseUpstreamChecksums(upstreamChecksums(sums, dir));
    expect([...parsed.keys()].sort()).toEqual([...pin.files].sort());
    for (const f of pin.files) expect(parsed.get(f)).toBe(sums.get(f));
  });

  it('rejects a malformed lock line with the line number and the fix', () => {
    expect(() => parseLock('# ok\nnot-a-sum  file.deb\n', 'kernel-pins.lock')).toThrow(/kernel-pins.lock:2: expected/);
  });
});

describe('checksum resolution (fake download of CHECKSUMS)', () => {
  it('fake download: learns the checksums on first use, writes the lock, then reuses it without fetching', async () => {
    const dir = join(tmp, 'tofu');
    const sums = makeDebs(dir);
    const lock = join(tmp, 'tofu.lock');
    const urls: string[] = [];
    const first = await resolveChecksums(pin, lock, 'http://mirror.invalid/mainline', async (url) => {
      urls.push(url);
      return upstreamChecksums(sums, dir);
    });
    expect(urls).toEqual(['http://mirror.invalid/mainline/v5.8/amd64/CHECKSUMS']);
    expect(first.source).toMatch(/trust on first use/);
    const locked = parseLock(readFileSync(lock, 'utf8'), lock);
    for (const f of pin.files) expect(locked.get(f)).toBe(sums.get(f));

    const second = await resolveChecksums(pin, lock, 'http://mirror.invalid/mainline', async () => {
      throw new Error('must not fetch when the lock is complete');
    });
    expect(second.source).toBe('lock');
    expect(second.sums).toEqual(first.sums);
  });

  it('fake download: refuses a mirror whose checksum differs from the lock, and leaves the lock alone', async () => {
    const dir = join(tmp, 'mismatch');
    const sums = makeDebs(dir);
    const lock = join(tmp, 'mismatch.lock');
    const f0 = pin.files[0]!;
    const before = `${'0'.repeat(64)}  ${f0}\n`;
    writeFileSync(lock, before);
    await expect(resolveChecksums(pin, lock, 'http://m.invalid', async () => upstreamChecksums(sums, dir))).rejects.toThrow(/mirror changed the file/);
    expect(readFileSync(lock, 'utf8')).toBe(before);
  });

  it('fake download: an unreachable mirror with no pins names the env var to set', async () => {
    const lock = join(tmp, 'none.lock');
    const err = await resolveChecksums(pin, lock, 'http://m.invalid', async () => {
      throw new Error('getaddrinfo ENOTFOUND');
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabError);
    expect((err as Error).message).toMatch(/ELECTRODE_LAB_KERNEL_MIRROR/);
    expect(existsSync(lock)).toBe(false);
  });
});

describe('the generated provisioning script (real bash, sha256sum, dpkg, sed)', () => {
  it('is valid bash', async () => {
    const dir = join(tmp, 'syntax');
    const script = kernelInstallScript(pin, makeDebs(dir), 'https://kernel.ubuntu.com/mainline');
    const file = join(tmp, 'syntax.sh');
    writeFileSync(file, script);
    const r = await runner.run(['bash', '-n', file], { check: false });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it('verify passes on the pinned bytes and fails on a changed or missing file', async () => {
    const dir = join(tmp, 'verify');
    const sums = makeDebs(dir);
    const script = kernelInstallScript(pin, sums, 'https://kernel.ubuntu.com/mainline');
    const ok = await runScript(script, ['verify'], { EL_KERNEL_DIR: dir });
    expect(ok.stdout).toContain('all 4 files match the pin');
    expect(ok.exitCode).toBe(0);

    writeFileSync(join(dir, pin.files[2]!), 'tampered\n');
    const bad = await runScript(script, ['verify'], { EL_KERNEL_DIR: dir });
    expect(bad.exitCode).toBe(3);
    expect(bad.stderr).toContain(`CHECKSUM MISMATCH ${dir}/${pin.files[2]}`);

    rmSync(join(dir, pin.files[2]!));
    const missing = await runScript(script, ['verify'], { EL_KERNEL_DIR: dir });
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr).toContain(`MISSING ${dir}/${pin.files[2]}`);
  });

  it('fake download: fetch pulls from a file:// mirror with real curl, then verify passes; a tampered mirror fails verify', async () => {
    const mirrorRoot = join(tmp, 'mirror');
    const sums = makeDebs(join(mirrorRoot, pin.mirrorPath));
    const dest = join(tmp, 'fetched');
    const script = kernelInstallScript(pin, sums, `file://${mirrorRoot}`);
    const r = await runScript(script, ['fetch', 'verify'], { EL_KERNEL_DIR: dest });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    for (const f of pin.files) expect(existsSync(join(dest, f))).toBe(true);

    writeFileSync(join(mirrorRoot, pin.mirrorPath, pin.files[0]!), 'evil\n');
    rmSync(join(dest, pin.files[0]!));
    const t = await runScript(script, ['fetch', 'verify'], { EL_KERNEL_DIR: dest });
    expect(t.exitCode).toBe(3);
    expect(t.stderr).toContain('CHECKSUM MISMATCH');
  });

  it('hold marks the kernel meta-packages held in dpkg', async () => {
    const admin = join(tmp, 'dpkg');
    mkdirSync(join(admin, 'updates'), { recursive: true });
    mkdirSync(join(admin, 'info'), { recursive: true });
    const stanza = (p: string) =>
      `Package: ${p}\nStatus: install ok installed\nPriority: optional\nSection: kernel\nMaintainer: test <t@example.invalid>\nArchitecture: amd64\nVersion: 5.4.0.42.46\nDescription: stand-in\n`;
    writeFileSync(join(admin, 'status'), HELD_PACKAGES.map(stanza).join('\n'));
    writeFileSync(join(admin, 'available'), '');
    const script = kernelInstallScript(pin, makeDebs(join(tmp, 'hold-debs')), 'x');
    const r = await runScript(script, ['hold'], { EL_DPKG_ADMINDIR: admin });
    expect(r.exitCode).toBe(0);
    const sel = await runner.run(['dpkg', `--admindir=${admin}`, '--get-selections', ...HELD_PACKAGES]);
    for (const p of HELD_PACKAGES) expect(sel.stdout).toMatch(new RegExp(`^${p}\\s+hold$`, 'm'));
  });

  it('grub replaces GRUB_DEFAULT (or appends it) and runs update-grub', async () => {
    const script = kernelInstallScript(pin, makeDebs(join(tmp, 'grub-debs')), 'x');
    const marker = join(tmp, 'update-grub-ran');
    for (const [name, before] of [
      ['replace', 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=""\n'],
      ['append', 'GRUB_TIMEOUT=5\n'],
    ] as const) {
      const file = join(tmp, `grub-${name}`);
      writeFileSync(file, before);
      rmSync(marker, { force: true });
      const r = await runScript(script, ['grub'], { EL_GRUB_DEFAULTS: file, EL_UPDATE_GRUB: `touch ${marker}` });
      expect(r.exitCode).toBe(0);
      const after = readFileSync(file, 'utf8');
      expect(after.match(/^GRUB_DEFAULT=.*$/gm)).toEqual(['GRUB_DEFAULT="Advanced options for Ubuntu>Ubuntu, with Linux 5.8.0-050800-generic"']);
      expect(after).toContain('GRUB_TIMEOUT=5');
      expect(existsSync(marker)).toBe(true);
    }
  });

  it('assert fails on a kernel other than the pin (this host runs 6.x) and names the fix', async () => {
    const script = kernelInstallScript(pin, makeDebs(join(tmp, 'assert-debs')), 'x');
    const r = await runScript(script, ['assert'], {});
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toMatch(/running \S+, the lab pins 5\.8\.0-050800-generic; check the GRUB menu/);
  });
});
