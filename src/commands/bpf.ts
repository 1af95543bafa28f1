/** `electrode-lab attach | detach | stats`: the eBPF fast paths on a lab's replicas. */
import { Command, Option } from 'commander';
import { DiagnosticsError } from '../diagnostics.js';
import { ALL_FAST_PATHS, FastPaths, XDP_MODES, XdpMode, attachFastPaths, detachFastPaths, fastPathNames, fastPathStats, formatStatsTable, setFastPaths } from '../bpf.js';
import { kernelCheckPreconditions, listHostKernels, runKernelCheck } from '../kernelcheck.js';
import { CliContext } from './index.js';

interface AttachOpts {
  broadcast?: boolean;
  quorum?: boolean;
  reply?: boolean;
  all?: boolean;
  xdpMode: XdpMode;
  set?: boolean;
}

/** --all or the chosen arms; none chosen = loaded but switched off (switch on later with --set). */
export function fastPathsFromOptions(o: Pick<AttachOpts, 'broadcast' | 'quorum' | 'reply' | 'all'>): FastPaths {
  if (o.all) {
    if (o.broadcast || o.quorum || o.reply) {
      throw new DiagnosticsError([{ code: 'BPF_FLAGS', subject: '--all', message: '--all already enables every fast path', hint: 'use --all alone, or list --broadcast/--quorum/--reply' }]);
    }
    return { ...ALL_FAST_PATHS };
  }
  return { broadcast: Boolean(o.broadcast), quorum: Boolean(o.quorum), reply: Boolean(o.reply) };
}

export function registerBpf(program: Command, ctx: CliContext): void {
  program
    .command('attach')
    .description("load the Electrode eBPF fast paths on every replica of a lab (XDP + TC egress), pinned under the node's pin folder")
    .option('--broadcast', 'TC egress fan-out of Prepare/Commit on the leader')
    .option('--quorum', 'XDP PrepareOK pruning on the leader')
    .option('--reply', 'XDP fast PrepareOK on followers')
    .option('--all', 'all three fast paths')
    .addOption(new Option('--xdp-mode <mode>', 'native, generic, or auto (native, falling back loudly)').choices([...XDP_MODES]).default('auto'))
    .option('--set', 'only switch fast paths on/off on an attached lab (no reload)')
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab attach --all                    every fast path, native XDP where possible
  $ electrode-lab attach --broadcast --name demo  only the TC broadcast, lab 'demo'
  $ electrode-lab attach --set --quorum           keep programs, switch to quorum prune only
  $ electrode-lab attach                          load everything, all fast paths switched off

Re-running attach replaces what an earlier (or crashed) run left behind. Start the
replicas with the matching --fast-broadcast/--fast-quorum/--fast-reply flags.`,
    )
    .action(async (o: AttachOpts) => {
      const fp = fastPathsFromOptions(o);
      const { plan, paths, provider } = ctx.loadLab();
      const pctx = ctx.providerContext(paths);
      if (o.set) {
        await pctx.progress.step(`switching fast paths to ${fastPathNames(fp)} on ${plan.cluster.n} replicas`, () => setFastPaths(plan, provider, pctx, fp));
        ctx.out(`fast paths now: ${fastPathNames(fp)}`);
        return;
      }
      const lines = await pctx.progress.step(`attaching fast paths (${fastPathNames(fp)}, xdp ${o.xdpMode}) on ${plan.cluster.n} replicas`, () =>
        attachFastPaths(plan, provider, pctx, fp, o.xdpMode),
      );
      ctx.out(lines.join('\n'));
      ctx.out(`next: electrode-lab stats${plan.lab === 'lab' ? '' : ` --name ${plan.lab}`} | electrode-lab status | electrode-lab detach`);
    });

  program
    .command('detach')
    .description('remove the eBPF fast paths from every replica and unpin them (idempotent)')
    .addHelpText('after', '\nExample:\n  $ electrode-lab detach --name demo')
    .action(async () => {
      const { plan, paths, provider } = ctx.loadLab();
      const pctx = ctx.providerContext(paths);
      await pctx.progress.step(`detaching fast paths from ${plan.cluster.n} replicas`, () => detachFastPaths(plan, provider, pctx));
      ctx.out(`fast paths detached, pins under ${plan.bpf.pinRoot} removed`);
    });

  program
    .command('stats')
    .description('eBPF fast-path counters (seen/passed/dropped/cloned/replied/errors) per replica')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  $ electrode-lab stats\n  $ electrode-lab stats --json --name demo')
    .action(async (o: { json?: boolean }) => {
      const { plan, paths, provider } = ctx.loadLab();
      const stats = await fastPathStats(plan, provider, ctx.providerContext(paths));
      ctx.out(o.json ? JSON.stringify({ lab: plan.lab, nodes: stats }, null, 2) : formatStatsTable(stats));
    });

  program
    .command('check-kernel')
    .description("boot another kernel under qemu (no disk image) and check that the fast paths pass ITS verifier and attach there")
    .option('--kernel <vmlinuz>', 'kernel image to boot (default: the oldest /boot/vmlinuz-* of this host)')
    .option('--modules <dir>', "that kernel's modules folder, for veth/clsact/cls_bpf (default /lib/modules/<its release>)")
    .option('--keep', 'keep the initramfs and the console log (path printed)')
    .option('--json', 'machine-readable result')
    .addHelpText(
      'after',
      `
Why: the verifier differs between kernels. Objects that load on this host's
kernel can be rejected by the 5.8 or 6.1 kernel your VMs run; this finds out in
seconds (KVM) or about half a minute (software emulation) instead of a VM boot.

What the guest does: bpftool prog loadall on every object (the verifier), then
el-loader attach --broadcast --quorum --reply --xdp-mode native on a veth, tc
egress check, stats, detach. The verifier's verdict is printed on failure.

Examples:
  $ electrode-lab check-kernel                                   # Debian 12's 6.1 from /boot
  $ electrode-lab check-kernel --kernel ./vmlinuz-5.8.0-050800-generic --modules ./lib/modules/5.8.0-050800-generic
  $ electrode-lab check-kernel --json`,
    )
    .action(async (o: { kernel?: string; modules?: string; keep?: boolean; json?: boolean }) => {
      const kernel = o.kernel ?? listHostKernels()[0] ?? '/boot/vmlinuz';
      const problems = kernelCheckPreconditions({ kernel });
      if (problems.length) throw new DiagnosticsError(problems, 'preconditions');
      const progress = ctx.progress();
      const res = await progress.step(`check the fast paths on ${kernel}`, () =>
        runKernelCheck({ kernel, runner: ctx.runner(), ...(o.modules ? { modulesDir: o.modules } : {}), keep: Boolean(o.keep), onStep: (w) => progress.info(w) }),
      );
      if (o.json) {
        ctx.out(JSON.stringify({ kernel: res.kernel, release: res.release, accel: res.accel, ok: res.problems.length === 0, problems: res.problems, report: res.report, bootSeconds: Number(res.bootSeconds.toFixed(1)), ...(res.stagingDir ? { kept: res.stagingDir } : {}) }, null, 2));
      } else {
        const r = res.report;
        ctx.out(`kernel ${res.release} (${res.kernel}), qemu ${res.accel}, ${res.bootSeconds.toFixed(1)} s`);
        for (const l of r.loads) ctx.out(`  verifier  ${l.object}: ${l.ok ? 'accepted' : 'REJECTED'}`);
        if (r.attach && 'ok' in r.attach) ctx.out(`  attach    ${r.attach.ok ? `ok (XDP ${r.xdp ?? '?'}, TC egress ${r.tcEgress ? 'yes' : 'no'})` : 'FAILED'}; detach ${r.detach ? 'ok' : 'FAILED'}, pins left ${r.pinsLeft ?? '?'}`);
        for (const n of r.notes) ctx.out(`  note      ${n}`);
        if (res.stagingDir) ctx.out(`  kept      ${res.stagingDir} (initramfs.gz, console.log)`);
        ctx.out(res.problems.length ? `\nproblems:\n${res.problems.map((p) => `- ${p}`).join('\n')}` : 'the fast paths load, pass the verifier and attach natively on this kernel');
      }
      if (res.problems.length) ctx.setExitCode(1);
    });
}
