/**
 * Tier 2: the rendered Vagrantfiles pass the real `vagrant validate` of
 * Debian's vagrant + vagrant-libvirt (which rejects unknown provider settings
 * such as a provider-level driver_queues). HOME and VAGRANT_HOME point at a
 * temporary folder so the user's ~/.vagrant.d is never touched; validate
 * needs the box name only, not the box.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kernelInstallScript, kernelPin } from '../../src/images/kernel.js';
import { projectRoot } from '../../src/edges/paths.js';
import { ExecaRunner } from '../../src/edges/runner.js';
import { DEFAULT_KERNEL } from '../../src/core/spec.js';
import { renderVagrantfile } from '../../src/providers/vagrantfile.js';
import { vmPlan } from '../helpers/vagrant.helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'el-vagrant-validate-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const runner = new ExecaRunner();

async function validate(text: string, dir: string) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Vagrantfile'), text);
  const home = join(tmp, 'home');
  return runner.run(['vagrant', 'validate'], {
    cwd: dir,
    check: false,
    timeoutMs: 120_000,
    env: { ...process.env, HOME: home, VAGRANT_HOME: join(home, '.vagrant.d'), VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_DEFAULT_PROVIDER: 'libvirt' },
  });
}

describe('vagrant validate (real vagrant + vagrant-libvirt)', () => {
  for (const n of [3, 5, 7]) {
    it(`accepts the Vagrantfile for ${n} replicas`, async () => {
      const r = await validate(renderVagrantfile(vmPlan(n)), join(tmp, `lab${n}`));
      expect(r.stderr + r.stdout).toContain('validated successfully');
      expect(r.exitCode).toBe(0);
    }, 120_000);
  }

  it('accepts the ubuntu2004-k58 recipe Vagrantfile with a generated kernel.sh', async () => {
    const dir = join(tmp, 'ubuntu-recipe');
    mkdirSync(dir, { recursive: true });
    const pin = kernelPin(DEFAULT_KERNEL)!;
    writeFileSync(join(dir, 'kernel.sh'), kernelInstallScript(pin, new Map(pin.files.map((f) => [f, 'a'.repeat(64)])), 'https://kernel.ubuntu.com/mainline'));
    const r = await validate(readFileSync(join(projectRoot(), 'boxes/ubuntu2004-k58/Vagrantfile'), 'utf8'), dir);
    expect(r.stderr + r.stdout).toContain('validated successfully');
  }, 120_000);

  it('rejects a provider-level driver_queues (so the check above can fail)', async () => {
    const text = renderVagrantfile(vmPlan(3)).replace('lv.cpus = 2', 'lv.cpus = 2\n      lv.driver_queues = 4');
    const r = await validate(text, join(tmp, 'bad'));
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr + r.stdout).toContain("shouldn't exist: driver_queues");
  }, 120_000);
});
