/**
 * Local base boxes: recipes under boxes/<name>/, built into a cache folder
 * and added to vagrant as `electrode-lab/<name>`. The box records its kernel
 * release (electrode-lab.json inside the box, box.json next to the cached
 * .box file) so a lab can check it against its spec.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { projectRoot } from '../edges/paths.js';

export interface BoxRecipe {
  /** Recipe name, e.g. debian12. */
  name: string;
  /** Folder under boxes/ holding build.sh (recipes may share one). */
  dir: string;
  /** The vagrant box name it produces. */
  box: string;
  description: string;
  /** The kernel it boots (`uname -r`); 'recorded' = read from the built box. */
  kernel: string;
  needsInternet: boolean;
  /** Boots a kernel image of its own (a bzImage with every driver built in), given at build time. */
  ownKernel?: boolean;
  /** No compiler inside: labs copy host-built binaries (`--build host`) unless told otherwise. */
  hostBuild?: boolean;
}

export const BOX_RECIPES: BoxRecipe[] = [
  {
    name: 'debian12',
    dir: 'debian12',
    box: 'electrode-lab/debian12',
    description: "Debian 12 built offline with debootstrap; the distribution's cloud kernel (6.1), runtime libs for --build host, gdb, bpftool",
    kernel: 'recorded',
    needsInternet: false,
    hostBuild: true,
  },
  {
    name: 'debian12-k58',
    dir: 'debian12',
    box: 'electrode-lab/debian12-k58',
    description: 'the debian12 userland booting a Linux 5.8 kernel image built from source (no initrd, no modules; offline)',
    kernel: 'recorded',
    needsInternet: false,
    ownKernel: true,
    hostBuild: true,
  },
  {
    name: 'ubuntu2004-k58',
    dir: 'ubuntu2004-k58',
    box: 'electrode-lab/ubuntu2004-k58',
    description: 'Ubuntu 20.04 with the pinned mainline 5.8.0 kernel and the build toolchain (needs the internet)',
    kernel: '5.8.0-050800-generic',
    needsInternet: true,
  },
];

export function boxRecipe(name: string): BoxRecipe {
  const r = BOX_RECIPES.find((b) => b.name === name || b.box === name);
  if (!r) throw new LabError(`no box recipe '${name}'; recipes: ${BOX_RECIPES.map((b) => b.name).join(', ')}`, 'UNKNOWN_BOX');
  return r;
}

export function recipeDir(recipe: BoxRecipe): string {
  return join(projectRoot(), 'boxes', recipe.dir);
}

/** Kernels built by `electrode-lab kernel build`: $ELECTRODE_LAB_KERNELS, else $XDG_CACHE_HOME/electrode-lab/kernels. */
export function kernelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ELECTRODE_LAB_KERNELS) return resolve(env.ELECTRODE_LAB_KERNELS);
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'electrode-lab', 'kernels');
}

/** What `kernel build` records next to the image it made (kernel.json in the kernel cache). */
export interface KernelRecord {
  /** The image's `uname -r`. */
  release: string;
  /** Absolute path of the bzImage. */
  image: string;
  /** Its .config, kept next to it. */
  config: string;
  source: string;
  built: string;
  btf: boolean;
}

export function kernelRecordFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(kernelCacheDir(env), 'kernel.json');
}

/** The image `kernel build` recorded, when it is still there. */
export function recordedKernel(env: NodeJS.ProcessEnv = process.env): KernelRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(kernelRecordFile(env), 'utf8')) as Partial<KernelRecord>;
    return typeof r.image === 'string' && typeof r.release === 'string' && existsSync(r.image) ? (r as KernelRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** Where a 5.8 image came from, for the line `up` and `box build` print. */
export interface OwnKernel {
  path: string;
  source: string;
}

/**
 * The 5.8 guest kernel image for debian12-k58 when none is given:
 * $ELECTRODE_LAB_K58_KERNEL, else the image `kernel build` recorded, else the
 * developers' ../shared/kernels/vmlinuz-5.8.1-vm.
 */
export function ownKernelImage(env: NodeJS.ProcessEnv = process.env, root = projectRoot()): OwnKernel | undefined {
  if (env.ELECTRODE_LAB_K58_KERNEL) return { path: resolve(env.ELECTRODE_LAB_K58_KERNEL), source: 'ELECTRODE_LAB_K58_KERNEL' };
  const built = recordedKernel(env);
  if (built) return { path: built.image, source: `built by \`electrode-lab kernel build\` from ${built.source}` };
  const shared = resolve(root, '..', 'shared', 'kernels', 'vmlinuz-5.8.1-vm');
  return existsSync(shared) ? { path: shared, source: 'the 5.8.1 guest image next to the checkout' } : undefined;
}

export function defaultOwnKernel(env: NodeJS.ProcessEnv = process.env, root = projectRoot()): string | undefined {
  return ownKernelImage(env, root)?.path;
}

/** Built boxes are cached here: $ELECTRODE_LAB_BOXES, else $XDG_CACHE_HOME/electrode-lab/boxes (~/.cache/...). */
export function boxCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ELECTRODE_LAB_BOXES) return resolve(env.ELECTRODE_LAB_BOXES);
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'electrode-lab', 'boxes');
}

export function builtBoxFile(recipe: BoxRecipe, env: NodeJS.ProcessEnv = process.env): string {
  return join(boxCacheDir(env), recipe.name, `${recipe.name}.box`);
}

export function vagrantHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.VAGRANT_HOME ? resolve(env.VAGRANT_HOME) : join(homedir(), '.vagrant.d');
}

/** Box metadata written by the recipes (electrode-lab.json / box.json). */
export interface BoxMeta {
  name: string;
  kernel: string;
  built?: string;
}

function readMeta(file: string): BoxMeta | undefined {
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as Partial<BoxMeta>;
    return typeof m.kernel === 'string' && typeof m.name === 'string' ? (m as BoxMeta) : undefined;
  } catch {
    return undefined;
  }
}

function installedBoxDir(box: string, env: NodeJS.ProcessEnv): string {
  return join(vagrantHome(env), 'boxes', box.replace(/\//g, '-VAGRANTSLASH-'));
}

/** Whether vagrant has this box for libvirt (its folder, as `vagrant box add` leaves it: read without running vagrant). */
export function boxAdded(box: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const dir = installedBoxDir(box, env);
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((version) => existsSync(join(dir, version, 'libvirt', 'metadata.json')));
}

/** The kernel an installed vagrant box records, if it is one of ours. */
export function installedBoxMeta(box: string, env: NodeJS.ProcessEnv = process.env): BoxMeta | undefined {
  const dir = installedBoxDir(box, env);
  if (!existsSync(dir)) return undefined;
  for (const version of readdirSync(dir).sort().reverse()) {
    const m = readMeta(join(dir, version, 'libvirt', 'electrode-lab.json'));
    if (m) return m;
  }
  return undefined;
}

/** The kernel a box records: the installed box's metadata, else the cached build's, else the recipe's pin. */
export function boxKernel(box: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const installed = installedBoxMeta(box, env)?.kernel;
  if (installed) return installed;
  const recipe = BOX_RECIPES.find((b) => b.box === box);
  if (!recipe) return undefined;
  return cachedBoxMeta(recipe, env)?.kernel ?? (recipe.kernel === 'recorded' ? undefined : recipe.kernel);
}

export function cachedBoxMeta(recipe: BoxRecipe, env: NodeJS.ProcessEnv = process.env): BoxMeta | undefined {
  return readMeta(join(boxCacheDir(env), recipe.name, 'box.json'));
}

/** `vagrant box list --machine-readable` -> [name, provider, version]. */
export function parseBoxList(text: string): { name: string; provider: string; version: string }[] {
  const out: { name: string; provider: string; version: string }[] = [];
  let cur: { name?: string; provider?: string } = {};
  for (const line of text.split('\n')) {
    const f = line.split(',');
    if (f[2] === 'box-name') cur = { name: f[3] };
    else if (f[2] === 'box-provider') cur.provider = f[3];
    else if (f[2] === 'box-version' && cur.name) out.push({ name: cur.name, provider: cur.provider ?? '?', version: f[3] ?? '?' });
  }
  return out;
}
