/** Tier 1: box recipes, cache location and the kernel a box records. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { boxCacheDir, boxKernel, boxRecipe, defaultOwnKernel, recipeDir } from '../../src/images/boxes.js';
import { DEFAULT_KERNEL, normalizeSpec } from '../../src/core/spec.js';

const tmp = mkdtempSync(join(tmpdir(), 'el-boxes-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('boxes', () => {
  it('caches under $ELECTRODE_LAB_BOXES, else the XDG cache', () => {
    expect(boxCacheDir({ ELECTRODE_LAB_BOXES: '/srv/boxes' })).toBe('/srv/boxes');
    expect(boxCacheDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/electrode-lab/boxes');
  });

  it('names the recipes on an unknown box', () => {
    expect(() => boxRecipe('centos7')).toThrow(/recipes: debian12, debian12-k58, ubuntu2004-k58/);
    expect(boxRecipe('electrode-lab/debian12').name).toBe('debian12');
  });

  it('debian12-k58 is the debian12 recipe booting a kernel image of its own, by default the 5.8.1 guest image of ../shared', () => {
    const k58 = boxRecipe('debian12-k58');
    expect(recipeDir(k58)).toBe(recipeDir(boxRecipe('debian12')));
    expect(k58).toMatchObject({ box: 'electrode-lab/debian12-k58', ownKernel: true, needsInternet: false, kernel: 'recorded' });
    expect(defaultOwnKernel({ ELECTRODE_LAB_K58_KERNEL: '/k/bzImage' })).toBe('/k/bzImage');
    // the developers' kernels folder, when it exists next to the checkout; none otherwise
    const checkout = join(tmp, 'checkout');
    expect(defaultOwnKernel({}, checkout)).toBeUndefined();
    mkdirSync(join(tmp, 'shared', 'kernels'), { recursive: true });
    const img = join(tmp, 'shared', 'kernels', 'vmlinuz-5.8.1-vm');
    writeFileSync(img, 'x');
    expect(defaultOwnKernel({}, checkout)).toBe(img);
  });

  it('a box you choose brings its own kernel unless you pin one; the default box gets the pinned 5.8', () => {
    expect(normalizeSpec({}).spec!.vm.kernel).toBe(DEFAULT_KERNEL);
    expect(normalizeSpec({ vm: { box: 'electrode-lab/debian12-k58' } }).spec!.vm.kernel).toBe('box');
    expect(normalizeSpec({ vm: { box: 'electrode-lab/debian12-k58' } }, { vm: { kernel: '5.8.0-050800-generic' } }).spec!.vm.kernel).toBe('5.8.0-050800-generic');
  });

  it('has an executable build script for every recipe', () => {
    for (const name of ['debian12', 'debian12-k58', 'ubuntu2004-k58']) {
      expect(statSync(join(recipeDir(boxRecipe(name)), 'build.sh')).mode & 0o111).not.toBe(0);
    }
  });

  it('reads the kernel a box records: installed box first, then the cached build, then the recipe pin', () => {
    const env = { VAGRANT_HOME: join(tmp, 'vh'), ELECTRODE_LAB_BOXES: join(tmp, 'cache') };
    expect(boxKernel('electrode-lab/debian12', env)).toBeUndefined();
    expect(boxKernel('electrode-lab/ubuntu2004-k58', env)).toBe('5.8.0-050800-generic');
    mkdirSync(join(tmp, 'cache', 'debian12'), { recursive: true });
    writeFileSync(join(tmp, 'cache', 'debian12', 'box.json'), '{"name":"electrode-lab/debian12","kernel":"6.1.0-9-cloud-amd64"}');
    expect(boxKernel('electrode-lab/debian12', env)).toBe('6.1.0-9-cloud-amd64');
    const inst = join(tmp, 'vh', 'boxes', 'electrode-lab-VAGRANTSLASH-debian12', '0', 'libvirt');
    mkdirSync(inst, { recursive: true });
    writeFileSync(join(inst, 'electrode-lab.json'), '{"name":"electrode-lab/debian12","kernel":"6.1.0-50-cloud-amd64"}');
    expect(boxKernel('electrode-lab/debian12', env)).toBe('6.1.0-50-cloud-amd64');
    expect(boxKernel('someone/else', env)).toBeUndefined();
  });
});
