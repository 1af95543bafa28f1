/**
 * `electrode-lab kernel build --source linux-5.8.x.tar.xz`: configures and
 * builds a Linux 5.8 bzImage for libvirt guests (src/images/kernelbuild.ts says
 * which options and why) and records it in the kernel cache, where
 * `box build debian12-k58` and `up` find it.
 */
import { Command, InvalidArgumentError } from 'commander';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { boxRecipe, builtBoxFile, kernelCacheDir, KernelRecord, kernelRecordFile } from '../images/boxes.js';
import { kernelArgv } from '../core/argv.js';
import { LabError } from '../core/diagnostics.js';
import { bzImageRelease } from '../images/kernelcheck.js';
import { btfChoice, configMissing, guestKernelConfig, is58, makefileVersion, sourceKind } from '../images/kernelbuild.js';
import { which } from '../edges/probe.js';
import { CliContext } from './context.js';

const positive = (v: string) => {
  if (!/^[1-9]\d*$/.test(v)) throw new InvalidArgumentError('must be a whole number >= 1.');
  return Number(v);
};

export function registerKernel(program: Command, ctx: CliContext): void {
  const kernel = program.command('kernel').description('build the Linux 5.8 image VM labs boot (box debian12-k58)');
  kernel
    .command('build')
    .description('configure and build a Linux 5.8 bzImage for libvirt guests, and record it for `box build debian12-k58` and `up`')
    .requiredOption('--source <tarball|dir>', 'a Linux 5.8.x source tarball (linux-5.8.1.tar.xz) or an unpacked tree (built in place)')
    .option('--jobs <n>', 'make -j (default: the number of CPUs)', positive)
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab kernel build --source ~/linux-5.8.1.tar.xz
  $ electrode-lab kernel build --source ~/src/linux-5.8.18 --jobs 2

Steps: unpack (into the kernel cache), make x86_64_defconfig, make kvm_guest.config,
scripts/config (virtio, ext4, BPF, XDP, TC, netem, serial console built in; no
initrd and no modules needed; BTF when pahole 1.16-1.21 is installed), make
olddefconfig, a check that every option stayed =y, make bzImage (HOSTCFLAGS=-fcommon
KCFLAGS=-Wno-error for gcc 12). About 15 min on 2 cores.
The image and its .config land in ${kernelCacheDir(ctx.env)} (ELECTRODE_LAB_KERNELS).`,
    )
    .action(async (opts: { source: string; jobs?: number }) => {
      const runner = ctx.runner();
      const progress = ctx.progress();
      const source = resolve(opts.source);
      if (!existsSync(source)) throw new LabError(`--source ${opts.source}: no such file or folder; download linux-5.8.x.tar.xz from kernel.org (or a mirror) and pass its path`, 'KERNEL_NO_SOURCE');
      const kind = sourceKind(source, statSync(source).isDirectory());
      if (!kind) throw new LabError(`--source ${opts.source}: not a tarball (.tar.xz, .tar.gz, .tar.bz2) or a folder`, 'KERNEL_BAD_SOURCE');
      const named = /linux-(\d+\.\d+(?:\.\d+)?)/.exec(basename(source))?.[1];
      if (named && !is58(named)) throw new LabError(`--source ${opts.source} is Linux ${named}: VM labs boot 5.8 (the paper's kernel); pass a linux-5.8.x source`, 'KERNEL_NOT_58');
      const cache = kernelCacheDir(ctx.env);
      const jobs = opts.jobs ?? cpus().length;
      const log = join(cache, 'build.log');
      const t0 = performance.now();
      let tree = source;
      if (!runner.dryRun) mkdirSync(cache, { recursive: true });
      const run = async (argv: string[], timeoutMs = 600_000) => {
        const r = await runner.run(argv, { check: false, timeoutMs });
        if (!runner.dryRun) writeFileSync(log, `\n$ ${argv.join(' ')}  (exit ${r.exitCode}, ${r.durationMs} ms)\n${r.stdout}${r.stderr}`, { flag: 'a' });
        if (r.exitCode !== 0) throw new LabError(`\`${argv.join(' ')}\` failed (exit ${r.exitCode}); full output in ${log}\n${(r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n')}`, 'KERNEL_BUILD_FAILED');
        return r;
      };
      if (kind === 'tarball') {
        tree = join(cache, 'src', basename(source).replace(/\.(tar(\.\w+)?|tgz)$/, ''));
        await progress.step(`unpacking ${basename(source)} into ${tree}`, async () => {
          if (!runner.dryRun) {
            rmSync(tree, { recursive: true, force: true });
            mkdirSync(tree, { recursive: true });
          }
          await run(kernelArgv.extract(source, tree));
        });
      }
      if (!runner.dryRun) {
        const version = existsSync(join(tree, 'Makefile')) ? makefileVersion(readFileSync(join(tree, 'Makefile'), 'utf8')) : undefined;
        if (!version) throw new LabError(`${tree} has no kernel Makefile (VERSION/PATCHLEVEL): is ${opts.source} a Linux source?`, 'KERNEL_BAD_SOURCE');
        if (!is58(version)) throw new LabError(`${opts.source} is Linux ${version}: VM labs boot 5.8 (the paper's kernel); pass a linux-5.8.x source`, 'KERNEL_NOT_58');
        progress.info(`Linux ${version} in ${tree}, make -j${jobs}`);
      }
      const pahole = which('pahole', ctx.env) ? (await runner.run(['pahole', '--version'], { check: false })).stdout.trim() || undefined : undefined;
      const btf = btfChoice(runner.dryRun ? pahole ?? undefined : pahole);
      progress.info(`BTF: ${btf.why}`);
      const { enable, disable } = guestKernelConfig(btf.btf);
      await progress.step('configure: x86_64_defconfig + kvm_guest.config + the guest options, olddefconfig', async () => {
        await run(kernelArgv.make(tree, ['x86_64_defconfig'], jobs));
        await run(kernelArgv.make(tree, ['kvm_guest.config'], jobs));
        await run(kernelArgv.config(tree, enable, disable));
        await run(kernelArgv.make(tree, ['olddefconfig'], jobs));
        if (runner.dryRun) return;
        const missing = configMissing(readFileSync(join(tree, '.config'), 'utf8'), enable);
        if (missing.length) throw new LabError(`after olddefconfig, ${missing.map((o) => `CONFIG_${o}`).join(', ')} ${missing.length > 1 ? 'are' : 'is'} not =y in ${join(tree, '.config')} (a dependency is off); set ${missing.length > 1 ? 'them' : 'it'} with \`make -C ${tree} menuconfig\` and build with make bzImage`, 'KERNEL_CONFIG');
      });
      await progress.step(`make -j${jobs} bzImage (about 15 min on 2 cores; output in ${log})`, () => run(kernelArgv.make(tree, ['bzImage'], jobs), 4 * 3_600_000));
      if (runner.dryRun) return;
      const built = join(tree, 'arch', 'x86', 'boot', 'bzImage');
      const release = existsSync(built) ? bzImageRelease(readFileSync(built)) : undefined;
      if (!release) throw new LabError(`make bzImage succeeded but ${built} is no bzImage; see ${log}`, 'KERNEL_BUILD_FAILED');
      const image = join(cache, `vmlinuz-${release}-vm`);
      const config = join(cache, `config-${release}-vm`);
      copyFileSync(built, image);
      copyFileSync(join(tree, '.config'), config);
      const record: KernelRecord = { release, image, config, source, built: new Date().toISOString(), btf: btf.btf };
      writeFileSync(kernelRecordFile(ctx.env), JSON.stringify(record, null, 2) + '\n');
      const minutes = ((performance.now() - t0) / 60_000).toFixed(1);
      ctx.out(`kernel ${release} built in ${minutes} min: ${image} (config ${config}), recorded in ${kernelRecordFile(ctx.env)}`);
      const k58 = boxRecipe('debian12-k58');
      ctx.out(
        existsSync(builtBoxFile(k58, ctx.env))
          ? `a ${k58.box} box is cached already: \`electrode-lab box build debian12-k58 --rebuild\` makes it boot this image`
          : `next: \`electrode-lab box build debian12-k58\` (or \`electrode-lab up\`, which builds it when it needs it) boots this image`,
      );
    });
}
