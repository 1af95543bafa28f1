/**
 * Local base boxes: recipes under boxes/<name>/, built into a cache folder
 * and added to vagrant as `electrode-lab/<name>`. The box records its kernel
 * release (electrode-lab.json inside the box, box.json next to the cached
 * .box file) so a lab can check it against its spec.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { LabError } from './diagnostics.js';
import { projectRoot } from './paths.js';

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
}

export const BOX_RECIPES: BoxRecipe[] = [
  {
    name: 'debian12',
    dir: 'debian12',
    box: 'electrode-lab/debian12',
    description: "Debian 12 built offline with debootstrap; the distribution's cloud kernel (6.1), runtime libs for --build host, gdb, bpftool",
    kernel: 'recorded',
    needsInternet: false,
  },
  {
    name: 'debian12-k58',
    dir: 'debian12',
    box: 'electrode-lab/debian12-k58',
    description: 'the debian12 userland booting a Linux 5.8 kernel image built from source (no initrd, no modules; offline)',
    kernel: 'recorded',
    needsInternet: false,
    ownKernel: true,
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

/**
 * The 5.8 guest kernel image for debian12-k58 when none is given:
 * $ELECTRODE_LAB_K58_KERNEL, else the developers' ../shared/kernels/vmlinuz-5.8.1-vm.
 */
export function defaultOwnKernel(env: NodeJS.ProcessEnv = process.env, root = projectRoot()): string | undefined {
  if (env.ELECTRODE_LAB_K58_KERNEL) return resolve(env.ELECTRODE_LAB_K58_KERNEL);
  const shared = resolve(root, '..', 'shared', 'kernels', 'vmlinuz-5.8.1-vm');
  return existsSync(shared) ? shared : undefined;
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

/** The kernel an installed vagrant box records, if it is one of ours. */
export function installedBoxMeta(box: string, env: NodeJS.ProcessEnv = process.env): BoxMeta | undefined {
  const dir = join(vagrantHome(env), 'boxes', box.replace(/\//g, '-VAGRANTSLASH-'));
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
