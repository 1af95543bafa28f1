/** `electrode-lab attach | detach | stats`: the eBPF fast paths on a lab's replicas. */
import { Command } from 'commander';
import { DiagnosticsError } from '../core/diagnostics.js';
import { openLab } from '../providers/lab.js';
import { ALL_FAST_PATHS, FastPaths, HookChoice, XdpMode, attachFastPaths, detachFastPaths, fastPathNames, fastPathStats, formatAttach, formatStatsTable, setFastPaths, unavailableFastPaths } from '../lab/bpf.js';
import { formatKernelCheck, kernelCheckPreconditions, listHostKernels, runKernelCheck } from '../images/kernelcheck.js';
import { appendFileSync, existsSync } from 'node:fs';
import { statsLogFile, statsReadingLine } from '../course/evidence.js';
import { CliContext } from './context.js';
import { addFastPathOptions, hookOption, xdpModeOption } from './sharedFlags.js';

interface AttachOpts {
  broadcast?: boolean;
  quorum?: boolean;
  reply?: boolean;
  all?: boolean;
  xdpMode: XdpMode;
  hook: HookChoice;
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
  addFastPathOptions(program.command('attach').description("load the Electrode eBPF fast paths on every replica of a lab (XDP + TC egress), pinned under the node's pin folder"))
    .addOption(xdpModeOption())
    .addOption(hookOption())
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
replicas with the matching --fast-broadcast/--fast-quorum/--fast-reply flags.

Hooks: the broadcast always runs at TC egress. Quorum prune and fast reply run
where the NIC hands frames over cheapest: native XDP on virtio-net and real NICs
(the paper's setting); TC ingress on veth (netns labs), where native XDP converts
every frame into an XDP buffer (often a copy) and XDP_TX needs an XDP program on
the switch side too. Same programs, same rules, same counters; --hook xdp on a
netns lab shows the difference (bench --hook xdp vs --hook tc).`,
    )
    .action(async (o: AttachOpts) => {
      const fp = fastPathsFromOptions(o);
      const { plan, paths, provider } = ctx.loadLab();
      const pctx = ctx.providerContext(paths);
      if (o.set) {
        await pctx.progress.step(`switching fast paths to ${fastPathNames(fp)} on ${plan.cluster.n} replicas`, () => setFastPaths(openLab(provider, plan, pctx), fp));
        ctx.out(`fast paths now: ${fastPathNames(fp)}`);
        return;
      }
      const results = await pctx.progress.step(`attaching fast paths (${fastPathNames(fp)}, hook ${o.hook}${o.hook !== 'tc' ? `, xdp ${o.xdpMode}` : ''}) on ${plan.cluster.n} replicas`, () =>
        attachFastPaths(openLab(provider, plan, pctx), fp, o.xdpMode, o.hook),
      );
      ctx.out(formatAttach(results).join('\n'));
      const missing = unavailableFastPaths(results, fp);
      if (missing.length) pctx.progress.warn(`attached without what this kernel refused:\n  ${missing.join('\n  ')}\nreplicas started with the matching --fast-* flag will refuse to start`);
      ctx.out(`next: electrode-lab stats${plan.lab === 'lab' ? '' : ` --name ${plan.lab}`} | electrode-lab status | electrode-lab detach`);
    });

  program
    .command('detach')
    .description('remove the eBPF fast paths from every replica and unpin them (idempotent)')
    .addHelpText('after', '\nExample:\n  $ electrode-lab detach --name demo')
    .action(async () => {
      const { plan, paths, provider } = ctx.loadLab();
      const pctx = ctx.providerContext(paths);
      await pctx.progress.step(`detaching fast paths from ${plan.cluster.n} replicas`, () => detachFastPaths(openLab(provider, plan, pctx)));
      ctx.out(`fast paths detached, pins under ${plan.bpf.pinRoot} removed`);
    });

  program
    .command('stats')
    .description('eBPF fast-path counters (seen/passed/dropped/cloned/replied/fallback/full/errors) per replica')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  $ electrode-lab stats\n  $ electrode-lab stats --json --name demo\nEvery reading is also appended to <lab home>/labs/<lab>/logs/stats.jsonl.')
    .action(async (o: { json?: boolean }) => {
      const { plan, paths, provider } = ctx.loadLab();
      const stats = await fastPathStats(openLab(provider, plan, ctx.providerContext(paths)));
      // every reading is kept with the lab (logs/stats.jsonl): the course labs' checks compare answers with them
      if (!ctx.runner().dryRun && existsSync(paths.logsDir)) appendFileSync(statsLogFile(paths), statsReadingLine(plan.lab, stats));
      ctx.out(o.json ? JSON.stringify({ lab: plan.lab, nodes: stats }, null, 2) : formatStatsTable(stats));
    });

  program
    .command('check-kernel')
    .description("boot another kernel under qemu (no disk image) and check that the fast paths pass ITS verifier, attach and work there")
    .option('--kernel <vmlinuz>', 'kernel image to boot (default: the oldest /boot/vmlinuz-* of this host)')
    .option('--modules <dir>', "that kernel's modules folder, for veth/clsact/cls_bpf when they are modules (default /lib/modules/<its release>; a kernel with them built in needs none)")
    .option('--config <file>', "that kernel's .config, to say what it lacks before booting it (default: config-<name> next to the image, then /boot/config-<release>)")
    .option('--keep', 'keep the initramfs and the console log (path printed)')
    .option('--json', 'machine-readable result')
    .addHelpText(
      'after',
      `
Why: the verifier differs between kernels. Objects that load on this host's
kernel can be rejected by the 5.8 or 6.1 kernel your VMs run; this finds out in
seconds under software emulation instead of a VM boot.

What the guest does: bpftool prog loadall on every object (the verifier), then
el-loader attach --broadcast --quorum --reply --xdp-mode native on a veth, a
marked Prepare through TC egress, PrepareOKs and a Prepare through XDP, and
the counters of each fast path must move; then detach. On failure it prints
the verifier's verdict and what it means. A guest that does not reach its
/init in time (e.g. ELECTRODE_LAB_KVM=1 on a host whose KVM cannot boot stock
kernels) ends with that diagnosis instead of hanging.

Examples:
  $ electrode-lab check-kernel --kernel ../shared/kernels/vmlinuz-5.8.1   # the paper's kernel (built from source)
  $ electrode-lab check-kernel                                            # Debian 12's 6.1 from /boot
  $ electrode-lab check-kernel --kernel ./vmlinuz-5.8.0-050800-generic --modules ./lib/modules/5.8.0-050800-generic
  $ electrode-lab check-kernel --json`,
    )
    .action(async (o: { kernel?: string; modules?: string; config?: string; keep?: boolean; json?: boolean }) => {
      const kernel = o.kernel ?? listHostKernels()[0] ?? '/boot/vmlinuz';
      const problems = kernelCheckPreconditions({ kernel, ...(o.config ? { configFile: o.config } : {}), ...(o.modules ? { modulesDir: o.modules } : {}) });
      if (problems.length) throw new DiagnosticsError(problems, 'preconditions');
      const progress = ctx.progress();
      const res = await progress.step(`check the fast paths on ${kernel}`, () =>
        runKernelCheck({ kernel, runner: ctx.runner(), ...(o.modules ? { modulesDir: o.modules } : {}), ...(o.config ? { configFile: o.config } : {}), keep: Boolean(o.keep), onStep: (w) => progress.info(w) }),
      );
      if (o.json) {
        ctx.out(JSON.stringify({ kernel: res.kernel, release: res.release, accel: res.accel, ok: res.problems.length === 0, problems: res.problems, config: res.config, report: res.report, bootSeconds: Number(res.bootSeconds.toFixed(1)), ...(res.stagingDir ? { kept: res.stagingDir } : {}) }, null, 2));
      } else {
        ctx.out(formatKernelCheck(res));
      }
      if (res.problems.length) ctx.setExitCode(1);
    });
}
