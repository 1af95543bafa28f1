/**
 * Provisioning one VM after `vagrant up`: the kernel pin, electrode-lab's
 * binaries and the lab's files, all at the same absolute paths as on the host
 * (so a command line built for the netns provider runs unchanged in a VM).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { hostArtifacts, loaderPath } from '../edges/build.js';
import { defaultLockFile, kernelInstallScript, kernelMirror, kernelPin, resolveChecksums } from '../images/kernel.js';
import { projectRoot } from '../edges/paths.js';
import { Plan, PlanNode } from '../core/plan.js';
import { RunOptions, RunResult, shellQuote } from '../edges/runner.js';
import { SshSession } from '../edges/ssh.js';
import { ProviderContext } from './provider.js';
import { BuildMode } from './vagrantState.js';

/** One VM as provisioning sees it: root commands in it, and an ssh session for files. */
export interface Guest {
  readonly plan: Plan;
  readonly node: PlanNode;
  readonly ctx: ProviderContext;
  exec(argv: string[], opts?: RunOptions): Promise<RunResult>;
  /** A root shell command line. */
  sh(script: string, opts?: RunOptions): Promise<RunResult>;
  session(): Promise<SshSession>;
}

/**
 * The lab's kernel pin, installed and booted: the install script runs in the
 * guest, `reboot` restarts the VM (vagrant reload) and reconnects, then the
 * script asserts the running kernel is the pin.
 */
export async function installKernel(g: Guest, env: NodeJS.ProcessEnv, reboot: () => Promise<void>): Promise<void> {
  const { plan, node: n, ctx } = g;
  const pin = kernelPin(plan.vm.kernel)!;
  const mirror = kernelMirror(env);
  const { sums, source } = await resolveChecksums(pin, defaultLockFile(), mirror, async (url) => {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.text();
  });
  ctx.progress.info(`${n.name}: kernel ${pin.release} checksums from ${source}`);
  const s = await g.session();
  const tmp = mkdtempSync(join(tmpdir(), 'el-kernel-'));
  try {
    writeFileSync(join(tmp, 'kernel.sh'), kernelInstallScript(pin, sums, mirror));
    await s.putFile(join(tmp, 'kernel.sh'), '/tmp/electrode-lab-kernel.sh', 0o755);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  await g.exec(['bash', '/tmp/electrode-lab-kernel.sh', 'all'], { timeoutMs: 1_800_000 });
  await reboot();
  const r = await g.exec(['bash', '/tmp/electrode-lab-kernel.sh', 'assert'], { check: false });
  if (r.exitCode !== 0) throw new LabError(`${n.name}: ${r.stderr.trim() || r.stdout.trim()}`, 'KERNEL_DRIFT');
}

/** electrode-lab's binaries at the host's paths: host-built ones copied in, or the sources built in the guest. */
export async function installBinaries(g: Guest, mode: BuildMode): Promise<void> {
  const { node: n, ctx } = g;
  const root = projectRoot();
  const s = await g.session();
  const tmp = mkdtempSync(join(tmpdir(), 'el-src-'));
  try {
    const tgz = join(tmp, 'payload.tgz');
    if (mode === 'host') {
      await ctx.runner.run(['tar', '-C', root, '-czf', tgz, ...hostArtifacts(root).map((f) => f.slice(root.length + 1))]);
    } else {
      await ctx.runner.run(['tar', '-C', root, '--exclude=build', '-czf', tgz, 'native', 'bpf']);
    }
    await s.putFile(tgz, '/tmp/electrode-lab-payload.tgz');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  await g.exec(['mkdir', '-p', root]);
  await g.exec(['tar', '-C', root, '-xzf', '/tmp/electrode-lab-payload.tgz']);
  if (mode === 'guest') {
    const tools = await g.sh('for t in make cc clang; do command -v $t >/dev/null || echo $t; done', { check: false });
    if (tools.stdout.trim()) {
      throw new LabError(`${n.name}: the box has no ${tools.stdout.trim().split('\n').join(', ')} to build electrode-lab; use a box with the toolchain (electrode-lab/ubuntu2004-k58) or copy host-built binaries with \`--build host\` (same-distro guests, e.g. debian12)`, 'VAGRANT_NO_TOOLCHAIN');
    }
    await g.exec(['make', '-s', '-C', join(root, 'native')], { timeoutMs: 1_800_000 });
    await g.exec(['make', '-s', '-C', join(root, 'bpf')], { timeoutMs: 1_800_000 });
  }
  const check = await g.exec([loaderPath(root), '--help'], { check: false });
  if (/error while loading shared libraries|not found/.test(check.stderr)) {
    throw new LabError(`${n.name}: el-loader cannot run in the VM (${check.stderr.trim().split('\n')[0]}); install libbpf1 libelf1 in the box or build in the guest`, 'VAGRANT_BINARIES');
  }
}

/** The replica config and peer table at the host's paths, the log folders, bpffs and the node's pin folder. */
export async function installLabFiles(g: Guest): Promise<void> {
  const { node: n, ctx } = g;
  const { paths } = ctx;
  const s = await g.session();
  const mirror = (p: string) => ['install', '-D', '-m', '0644', `/tmp/${p.replace(/\//g, '_')}`, p];
  for (const f of [paths.replicaConfigFile, paths.peerTableFile]) {
    await s.putFile(f, `/tmp/${f.replace(/\//g, '_')}`);
    await g.exec(mirror(f));
  }
  await g.exec(['mkdir', '-p', paths.nodeLogDir(n.name), paths.pidsDir]);
  await g.sh(`mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; mkdir -p ${shellQuote([n.pinDir])}`);
}
