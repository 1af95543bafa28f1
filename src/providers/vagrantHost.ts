/**
 * What this host needs before a VM lab's first VM starts, and gives back after
 * its last one: the box (built or added when missing) and the libvirt daemons
 * (started when the host has no systemd, stopped when no VM lab is left).
 */
import { readFileSync } from 'node:fs';
import { DiagnosticsError } from '../core/diagnostics.js';
import { buildAndAddBox } from '../images/boxBuild.js';
import { bzImageRelease } from '../images/kernelcheck.js';
import { Plan } from '../core/plan.js';
import { libvirtdDecision, libvirtdFacts, startDaemons, StartedDaemon, stopDaemonsIfLast } from './libvirtd.js';
import { ProviderContext } from './provider.js';
import { LIBVIRT_URI, vagrantEnv } from './vagrantCli.js';
import { boxDecision, boxFacts, internetAnswers, planOnBox } from './vagrantBox.js';

/**
 * The box first (a stop here creates nothing), then the libvirt daemons
 * (started when this host has no systemd), then the box's build or add.
 * Prints which box, which kernel and why before any VM starts.
 */
export async function prepareVagrantHost(plan: Plan, ctx: ProviderContext, env: NodeJS.ProcessEnv): Promise<Plan> {
  const { runner, progress } = ctx;
  const facts = await boxFacts(plan, env, () => progress.step(`${plan.vm.box} must be built: asking whether the internet answers (kernel mirror, Vagrant Cloud; ELECTRODE_LAB_OFFLINE=1 skips this)`, () => internetAnswers(env)));
  const d = boxDecision(facts, (k) => {
    try {
      return bzImageRelease(readFileSync(k.path));
    } catch {
      return undefined;
    }
  });
  if (d.kind === 'stop') throw new DiagnosticsError([d.diagnostic], 'preconditions');
  const next = planOnBox(plan, d);
  const kernel = next.vm.kernel === 'box' ? d.kernel : `${next.vm.kernel} (the lab's pin, installed in each VM at provisioning)`;
  progress.info(`box: ${d.box}, kernel ${kernel}`);
  progress.info(`  why: ${d.why}`);
  if (d.fallback && next.spec.vm.build === 'host' && plan.spec.vm.build === undefined) progress.info(`  binaries: host-built (--build host): ${d.box} has no compiler`);

  let started: StartedDaemon[] = [];
  if (runner.dryRun) {
    progress.info('[dry-run] would start virtlogd and libvirtd here if they are down and this host has no systemd');
  } else {
    const ld = libvirtdDecision(await libvirtdFacts(runner, LIBVIRT_URI, vagrantEnv(env)), LIBVIRT_URI);
    if (ld.kind === 'stop') throw new DiagnosticsError([ld.diagnostic], 'preconditions');
    if (ld.kind === 'start') {
      progress.info(`${ld.why}: starting ${ld.daemons.join(' and ')} (once, for every VM lab on this host)`);
      started = await startDaemons(ld.daemons, { runner, progress, home: ctx.paths.home, lab: plan.lab, uri: LIBVIRT_URI, env: vagrantEnv(env) });
    }
  }
  if (d.step !== 'none' && d.recipe) {
    if (runner.dryRun) {
      progress.info(`[dry-run] would ${d.step === 'add' ? 'add the cached build of' : 'build and add'} ${d.box} (\`electrode-lab box build ${d.recipe.name}\`)`);
    } else {
      try {
        await buildAndAddBox(d.recipe, d.image ? { kernelImage: d.image.path } : {}, { runner, progress, env });
      } catch (e) {
        if (started.length) await stopVagrantDaemons(plan, ctx);
        throw e;
      }
    }
  }
  return next;
}

/** The libvirt daemons an `up` started, when no other VM lab is left. */
export async function stopVagrantDaemons(plan: Plan, ctx: ProviderContext): Promise<void> {
  await stopDaemonsIfLast({ runner: ctx.runner, progress: ctx.progress, home: ctx.paths.home, lab: plan.lab, vmLab: (p) => p === 'vagrant' });
}
