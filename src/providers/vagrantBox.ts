/**
 * The base box a VM lab needs, brought before any VM starts: used when
 * vagrant has it, added from the box cache, built from its recipe, or, when
 * the recipe needs the internet and there is none, replaced by the 5.8 box
 * this machine can build offline (debian12-k58 from a 5.8 image it was given
 * or has cached). The decision is one pure function (boxDecision) over facts
 * the edge (boxFacts) reads; `up` prints it, then acts on it.
 */
import { BOX_RECIPES, BoxMeta, BoxRecipe, boxAdded, cachedBoxMeta, installedBoxMeta, OwnKernel, ownKernelImage } from '../images/boxes.js';
import { Diagnostic } from '../core/diagnostics.js';
import { kernelMirror } from '../images/kernel.js';
import { Plan } from '../core/plan.js';
import { DEFAULT_SPEC } from '../core/spec.js';

/** The box `up` falls back to offline: the debian12 userland on a 5.8 image built from source. */
export const OFFLINE_K58_BOX = 'electrode-lab/debian12-k58';

/** What the decision looks at for one box. */
export interface BoxState {
  box: string;
  /** The electrode-lab recipe that makes it (undefined: someone else's box). */
  recipe?: BoxRecipe;
  /** vagrant has it for libvirt. */
  added: boolean;
  /** What the installed box records (its kernel), when it is one of ours. */
  installed?: BoxMeta;
  /** A build of it in the box cache (a `vagrant box add` away). */
  cached?: BoxMeta;
}

export interface BoxFacts {
  /** The lab's box. */
  want: BoxState;
  /** The lab's box is the default one (the user named no other), so another 5.8 box may stand in for it. */
  isDefault: boolean;
  /** The offline 5.8 box. */
  fallback: BoxState;
  /** A 5.8 image to build the offline box from (given, recorded by `kernel build`, or next to the checkout). */
  k58Image?: OwnKernel;
  /** Whether the internet answers; undefined = not asked (nothing needed it). */
  internet?: boolean;
}

export type BoxStep = 'none' | 'add' | 'build';

export type BoxDecision =
  | {
      kind: 'go';
      box: string;
      recipe?: BoxRecipe;
      step: BoxStep;
      /** The kernel its VMs will boot, as far as known before they do. */
      kernel: string;
      /** One line: why this box and this step. */
      why: string;
      /** The lab's own box could not be had: the plan must switch to `box`. */
      fallback: boolean;
      /** ownKernel builds: the image to boot. */
      image?: OwnKernel;
    }
  | { kind: 'stop'; diagnostic: Diagnostic };

/** Whether the decision depends on the internet (so the edge must ask): the box is to be built by a recipe that downloads. */
export function needsInternetAnswer(f: Omit<BoxFacts, 'internet'>): boolean {
  const w = f.want;
  if (w.added || w.cached) return false;
  return w.recipe ? w.recipe.needsInternet : true;
}

function kernelOf(s: BoxState): string {
  return s.installed?.kernel ?? s.cached?.kernel ?? (s.recipe && s.recipe.kernel !== 'recorded' ? s.recipe.kernel : "the box's own (recorded when built)");
}

function stepFor(s: BoxState): { step: BoxStep; how: string } | undefined {
  if (s.added) return { step: 'none', how: 'added to vagrant already' };
  if (s.cached) return { step: 'add', how: 'built before: adding it from the box cache' };
  return undefined;
}

/**
 * Which box a lab's VMs boot and what to do first. `imageRelease(k)` names a
 * 5.8 image's release (the edge reads it from the image header).
 */
export function boxDecision(f: BoxFacts, imageRelease: (k: OwnKernel) => string | undefined = () => undefined): BoxDecision {
  const w = f.want;
  const ready = stepFor(w);
  if (ready) return { kind: 'go', box: w.box, ...(w.recipe ? { recipe: w.recipe } : {}), step: ready.step, kernel: kernelOf(w), why: `${w.box}: ${ready.how}`, fallback: false };

  if (!w.recipe) {
    if (f.internet === false) return { kind: 'stop', diagnostic: stopDiagnostic(f, `${w.box} is not added to vagrant, is no electrode-lab recipe, and this machine has no internet to download it`) };
    return { kind: 'go', box: w.box, step: 'none', kernel: "the box's own", why: `${w.box}: not an electrode-lab recipe; vagrant downloads it at the first \`vagrant up\``, fallback: false };
  }

  if (w.recipe.ownKernel) {
    if (!f.k58Image) return { kind: 'stop', diagnostic: stopDiagnostic(f, `${w.box} boots a Linux 5.8 image of your own and none was given or built`) };
    const release = imageRelease(f.k58Image);
    if (!release) return badImage(f.k58Image);
    return { kind: 'go', box: w.box, recipe: w.recipe, step: 'build', kernel: release, image: f.k58Image, why: `${w.box}: not built yet; building it offline from the recipe with ${f.k58Image.path} (${f.k58Image.source})`, fallback: false };
  }
  if (!w.recipe.needsInternet) {
    return { kind: 'go', box: w.box, recipe: w.recipe, step: 'build', kernel: kernelOf(w), why: `${w.box}: not built yet; building it from the recipe (Debian's mirror, no other download)`, fallback: false };
  }
  if (f.internet) {
    return { kind: 'go', box: w.box, recipe: w.recipe, step: 'build', kernel: kernelOf(w), why: `${w.box}: not built yet and the internet answers: building it from the recipe (${w.recipe.description})`, fallback: false };
  }

  // the recipe needs the internet and there is none
  if (!f.isDefault) return { kind: 'stop', diagnostic: stopDiagnostic(f, `${w.box} is built from the internet, which this machine cannot reach`) };
  const fb = f.fallback;
  const offline = `${w.box} is built from the internet, which this machine cannot reach`;
  const fbReady = stepFor(fb);
  if (fbReady) return { kind: 'go', box: fb.box, ...(fb.recipe ? { recipe: fb.recipe } : {}), step: fbReady.step, kernel: kernelOf(fb), why: `${offline}; using ${fb.box} instead (${fbReady.how})`, fallback: true };
  const image = f.k58Image;
  if (image) {
    const release = imageRelease(image);
    if (!release) return badImage(image);
    return {
      kind: 'go',
      box: fb.box,
      ...(fb.recipe ? { recipe: fb.recipe } : {}),
      step: 'build',
      kernel: release,
      image,
      why: `${offline}; building ${fb.box} offline instead, booting ${image.path} (${image.source})`,
      fallback: true,
    };
  }
  return { kind: 'stop', diagnostic: stopDiagnostic(f, `${offline}, and there is no Linux 5.8 image to build ${OFFLINE_K58_BOX} offline`) };
}

function badImage(k: OwnKernel): BoxDecision {
  return {
    kind: 'stop',
    diagnostic: { code: 'BOX_BAD_KERNEL_IMAGE', subject: k.path, message: `the 5.8 image (${k.source}) is missing or not an x86 bzImage (no 'HdrS' setup header)`, hint: 'point ELECTRODE_LAB_K58_KERNEL at a bzImage (`make bzImage` output), or build one with `electrode-lab kernel build --source linux-5.8.x.tar.xz`' },
  };
}

/** The stop: nothing was created; the two ways out, as commands. */
function stopDiagnostic(f: BoxFacts, message: string): Diagnostic {
  return {
    code: 'VM_NO_BOX',
    subject: `vm.box=${f.want.box}`,
    message,
    hint:
      `either connect this machine to the internet (${kernelMirror()} and vagrantcloud.com) and run \`electrode-lab up\` again (it builds ${f.want.recipe?.box ?? f.want.box}), ` +
      `or make a 5.8 image offline with \`electrode-lab kernel build --source linux-5.8.x.tar.xz\` (or point ELECTRODE_LAB_K58_KERNEL at a bzImage you have) and run \`electrode-lab up\` again` +
      (f.isDefault ? ` (it then builds ${OFFLINE_K58_BOX})` : ` with --box ${OFFLINE_K58_BOX}`),
  };
}

function boxState(box: string, env: NodeJS.ProcessEnv): BoxState {
  const recipe = BOX_RECIPES.find((b) => b.box === box);
  const installed = installedBoxMeta(box, env);
  const cached = recipe ? cachedBoxMeta(recipe, env) : undefined;
  return { box, ...(recipe ? { recipe } : {}), added: boxAdded(box, env), ...(installed ? { installed } : {}), ...(cached ? { cached } : {}) };
}

/** Reads the facts (files only); `internet` is asked only when the decision depends on it. */
export async function boxFacts(plan: Plan, env: NodeJS.ProcessEnv, internet: () => Promise<boolean>): Promise<BoxFacts> {
  const image = ownKernelImage(env);
  const f: BoxFacts = { want: boxState(plan.vm.box, env), isDefault: plan.vm.box === DEFAULT_SPEC.vm.box, fallback: boxState(OFFLINE_K58_BOX, env), ...(image ? { k58Image: image } : {}) };
  if (needsInternetAnswer(f)) f.internet = await internet();
  return f;
}

/**
 * Whether the internet answers for what a recipe downloads: ELECTRODE_LAB_OFFLINE=1
 * says no without asking; else a HEAD request to the kernel mirror and to
 * Vagrant Cloud (any HTTP answer counts), 5 s each.
 */
export async function internetAnswers(env: NodeJS.ProcessEnv): Promise<boolean> {
  if (env.ELECTRODE_LAB_OFFLINE === '1') return false;
  const urls = [`${kernelMirror(env)}/`, 'https://vagrantcloud.com/generic/ubuntu2004'];
  const answers = await Promise.all(
    urls.map((u) =>
      fetch(u, { method: 'HEAD', redirect: 'manual', signal: AbortSignal.timeout(5000) }).then(
        () => true,
        () => false,
      ),
    ),
  );
  return answers.every(Boolean);
}

/** The plan on the box the decision chose: a stand-in box runs its own kernel, with host-built binaries when it has no compiler. */
export function planOnBox(plan: Plan, d: Extract<BoxDecision, { kind: 'go' }>): Plan {
  if (!d.fallback) return plan;
  const build = plan.spec.vm.build ?? (d.recipe?.hostBuild ? 'host' : undefined);
  return {
    ...plan,
    spec: { ...plan.spec, vm: { ...plan.spec.vm, box: d.box, kernel: 'box', ...(build ? { build } : {}) } },
    vm: { ...plan.vm, box: d.box, kernel: 'box' },
  };
}
