/**
 * Building a base box from its recipe and adding it to vagrant: the steps
 * `box build` runs, and the ones `up` runs when the lab's box is missing.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BoxMeta, BoxRecipe, boxCacheDir, builtBoxFile, cachedBoxMeta, ownKernelImage, recipeDir } from './boxes.js';
import { LabError } from '../core/diagnostics.js';
import { defaultLockFile, kernelInstallScript, kernelMirror, kernelPin, resolveChecksums } from './kernel.js';
import { bzImageRelease } from './kernelcheck.js';
import { Progress } from '../edges/progress.js';
import { Runner } from '../edges/runner.js';

export interface BoxBuildOptions {
  rebuild?: boolean;
  /** ownKernel recipes: the bzImage (default ownKernelImage()). */
  kernelImage?: string;
}

/** The 5.8 image a debian12-k58 build boots, with its release; a clear error when there is none or it is no bzImage. */
export function ownKernelFor(recipe: BoxRecipe, given: string | undefined, env: NodeJS.ProcessEnv): { path: string; release: string; source: string } {
  const k = given ? { path: given, source: '--kernel-image' } : ownKernelImage(env);
  if (!k) {
    throw new LabError(
      `box ${recipe.name} boots a Linux 5.8 kernel image of your own: build one with \`electrode-lab kernel build --source linux-5.8.x.tar.xz\`, or pass --kernel-image <bzImage> (or set ELECTRODE_LAB_K58_KERNEL)`,
      'BOX_NO_KERNEL_IMAGE',
    );
  }
  const release = existsSync(k.path) ? bzImageRelease(readFileSync(k.path)) : undefined;
  if (!release) throw new LabError(`${k.path} is not an x86 bzImage (no 'HdrS' setup header): pass a kernel image built with \`make bzImage\``, 'BOX_BAD_KERNEL_IMAGE');
  return { ...k, release };
}

/**
 * Builds the recipe into the box cache (unless cached and not `rebuild`),
 * then `vagrant box add`s it. The recipe's `step:` lines become progress
 * lines. Returns what the built box records.
 */
export async function buildAndAddBox(recipe: BoxRecipe, opts: BoxBuildOptions, deps: { runner: Runner; progress: Progress; env: NodeJS.ProcessEnv }): Promise<BoxMeta | undefined> {
  const { runner, progress, env } = deps;
  const file = builtBoxFile(recipe, env);
  const outDir = join(boxCacheDir(env), recipe.name);
  if (opts.rebuild || !existsSync(file)) {
    let buildEnv: NodeJS.ProcessEnv | undefined;
    if (recipe.ownKernel) {
      const k = ownKernelFor(recipe, opts.kernelImage, env);
      buildEnv = { ...env, BOX_NAME: recipe.name, BOX_KERNEL: k.path, BOX_KERNEL_RELEASE: k.release };
      progress.info(`${recipe.name}: kernel ${k.release} from ${k.path} (${k.source})`);
    }
    mkdirSync(outDir, { recursive: true });
    if (recipe.kernel !== 'recorded') {
      // the recipe installs the pinned kernel with the same verified script `up` uses
      const pin = kernelPin(recipe.kernel)!;
      const mirror = kernelMirror(env);
      const { sums } = await resolveChecksums(pin, defaultLockFile(), mirror, async (url) => {
        const res = await fetch(url);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        return res.text();
      });
      writeFileSync(join(outDir, 'kernel.sh'), kernelInstallScript(pin, sums, mirror));
    }
    await progress.step(`building ${recipe.box} from ${recipeDir(recipe)} (full output: ${join(outDir, 'build.log')})`, async () => {
      let pending = '';
      const r = await runner.run(['bash', join(recipeDir(recipe), 'build.sh'), outDir], {
        check: false,
        timeoutMs: 3_600_000,
        ...(buildEnv ? { env: buildEnv } : {}),
        onStdout: (chunk) => {
          pending += chunk;
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const l of lines) if (/^step: /.test(l)) progress.info(`  ${recipe.name}: ${l.slice(6)}`);
        },
      });
      if (!runner.dryRun) writeFileSync(join(outDir, 'build.log'), `${r.stdout}\n${r.stderr}`);
      if (r.exitCode !== 0) {
        const tail = (r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n');
        throw new LabError(`box recipe ${recipe.name} failed (exit ${r.exitCode}):\n${tail}`, 'BOX_BUILD_FAILED');
      }
    });
  } else {
    progress.info(`using the cached ${file} (\`box build ${recipe.name} --rebuild\` to build again)`);
  }
  await progress.step(`vagrant box add ${recipe.box}`, async () => {
    await runner.run(['vagrant', 'box', 'add', '--force', '--name', recipe.box, file], { env: { ...env, VAGRANT_CHECKPOINT_DISABLE: '1' } });
  });
  return cachedBoxMeta(recipe, env);
}
