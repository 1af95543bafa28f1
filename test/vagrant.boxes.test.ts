/** Tier 1: box recipes, cache location and the kernel a box records. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { boxCacheDir, boxKernel, boxRecipe, recipeDir } from '../src/boxes.js';

const tmp = mkdtempSync(join(tmpdir(), 'el-boxes-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('boxes', () => {
  it('caches under $ELECTRODE_LAB_BOXES, else the XDG cache', () => {
    expect(boxCacheDir({ ELECTRODE_LAB_BOXES: '/srv/boxes' })).toBe('/srv/boxes');
    expect(boxCacheDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/electrode-lab/boxes');
  });

  it('names the recipes on an unknown box', () => {
    expect(() => boxRecipe('centos7')).toThrow(/recipes: debian12, ubuntu2004-k58/);
    expect(boxRecipe('electrode-lab/debian12').name).toBe('debian12');
  });

  it('has an executable build script for every recipe', () => {
    for (const name of ['debian12', 'ubuntu2004-k58']) {
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
