/**
 * The user's upstream Electrode tree inside a lab: never touched, copied
 * into the lab's state folder once (`source/`), built once per set of
 * replica switches (`build/<key>/`, a copy of `source/`), and prepared once
 * per variant (`<variant>/`: its config.txt, its xdp-handler/ with the
 * patched files built, patch.diff against the user's tree, edits.txt).
 *
 *   <lab>/upstream/upstream.json   what is where (tree, commit, digest, scenario)
 *   <lab>/upstream/source/         pristine copy of the user's tree
 *   <home>/upstream-builds/<digest>/plain/   make bench/replica bench/client, no switches
 *   <home>/upstream-builds/<digest>/tc_broadcast/ ...  (shared by labs: a bench resizing
 *                                  the lab downs and ups it, and must not rebuild)
 *   <lab>/upstream/all/            config.txt, xdp-handler/, patch.diff, edits.txt
 *   <lab>/upstream/scenario-broadcast/   the scenario's own files, toolchain edits only
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { LabPaths } from '../edges/paths.js';
import { Plan } from '../core/plan.js';
import { Runner } from '../edges/runner.js';
import { kernBuildArgv, loaderBuildArgv, userSpaceBuildArgv } from './commands.js';
import { unifiedDiff } from './diff.js';
import { UPSTREAM_FILES, UpstreamFile, UpstreamSources, upstreamPatch } from './patch.js';
import { ScenarioFiles } from './scenario.js';
import { UpstreamVariant, generatedVariant, upstreamLabOf, userBuildKey } from './variant.js';

/** Every path of the upstream part of a lab (pure getters). */
/** <home>/upstream-builds: the replica builds every lab of the home shares (`lab reset` keeps them). */
export function upstreamBuildsDir(home: string): string {
  return join(home, 'upstream-builds');
}

export class UpstreamPaths {
  constructor(readonly lab: LabPaths) {}
  get root(): string {
    return join(this.lab.root, 'upstream');
  }
  get stateFile(): string {
    return join(this.root, 'upstream.json');
  }
  get source(): string {
    return join(this.root, 'source');
  }
  /** A replica build of the tree with this digest, shared by every lab of the home (builds depend on the tree and the switches only). */
  build(digest: string, key: string): string {
    return join(upstreamBuildsDir(this.lab.home), digest.slice(0, 16), key);
  }
  variant(id: string): string {
    return join(this.root, id);
  }
  config(id: string): string {
    return join(this.variant(id), 'config.txt');
  }
  patchFile(id: string): string {
    return join(this.variant(id), 'patch.diff');
  }
  hostsFile(): string {
    return join(this.root, 'hosts');
  }
}

export interface TreeSource {
  /** The user's tree as given (absolute). */
  tree: string;
  /** `git rev-parse HEAD` when it is a git work tree. */
  commit?: string;
  dirty?: boolean;
  /** sha256 over the copied files' paths and contents: names the tree when there is no commit. */
  digest: string;
  /**
   * The same over what the replica build reads: everything but the eBPF
   * side's sources (xdp-handler/*.c). vr/replica.cc includes
   * xdp-handler/fast_common.h, for its status enum only (the CLUSTER_SIZE a
   * variant writes there does not reach the replica), so that one counts.
   */
  buildDigest?: string;
}

export interface UpstreamLabState {
  kind: 'electrode-lab-upstream';
  version: 1;
  source: TreeSource;
  scenario?: { dir: string; files: ScenarioFiles };
  sharedBpffs: boolean;
  /** The variant whose processes run now (up / upstream start), if any. */
  running?: string;
  /** Variants prepared: id -> patch file, edits. */
  variants: Record<string, { dir: string; patch: string; edits: string[]; userBuild: string }>;
}

/** Not copied: git metadata, build outputs and the BMC kernel tree the user may have downloaded. */
const SKIP = new Set(['.git', '.obj', 'xdp-handler/linux']);

function skip(tree: string, p: string): boolean {
  const r = relative(tree, p);
  return SKIP.has(r) || r.endsWith('.o') || r === 'bench/replica' || r === 'bench/client';
}

/** The eBPF side's sources: they do not go into bench/replica or bench/client. */
export const notInReplicaBuild = (rel: string) => /^xdp-handler\/[^/]+\.c$/.test(rel);

/** sha256 over every copied file (sorted relative path + NUL + bytes), less those `leaveOut` names. */
export function treeDigest(dir: string, leaveOut: (rel: string) => boolean = () => false): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (skip(dir, p) || leaveOut(relative(dir, p))) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        h.update(relative(dir, p) + '\0');
        h.update(readFileSync(p));
      }
    }
  };
  walk(dir);
  return h.digest('hex');
}

export function readSources(dir: string): UpstreamSources {
  const out: UpstreamSources = {};
  for (const f of Object.values(UPSTREAM_FILES)) if (existsSync(join(dir, f))) out[f] = readFileSync(join(dir, f), 'utf8');
  return out;
}

/** The scenario folder's files (docker-compose.yaml, config.txt, fast_user.c, fast_common.h, Dockerfile). */
export function readScenario(dir: string): ScenarioFiles {
  const need = ['docker-compose.yaml', 'config.txt', 'fast_user.c', 'fast_common.h'];
  const missing = need.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) throw new LabError(`--scenario ${dir}: ${missing.join(', ')} missing; a course scenario folder holds ${need.join(', ')} (and a Dockerfile)`, 'SCENARIO_FILES');
  const rd = (f: string) => readFileSync(join(dir, f), 'utf8');
  return { compose: rd('docker-compose.yaml'), config: rd('config.txt'), fastUser: rd('fast_user.c'), fastCommon: rd('fast_common.h'), ...(existsSync(join(dir, 'Dockerfile')) ? { dockerfile: rd('Dockerfile') } : {}) };
}

/** Checks a tree looks like upstream Electrode before anything is copied. */
export function treeProblems(tree: string): string[] {
  if (!existsSync(tree)) return [`${tree} does not exist`];
  const want = ['Makefile', 'vr/replica.cc', 'bench/client.cc', 'xdp-handler/fast_user.c', 'xdp-handler/fast_kern.c', 'xdp-handler/fast_common.h'];
  const missing = want.filter((f) => !existsSync(join(tree, f)));
  return missing.length ? [`${tree} is not an upstream Electrode tree: ${missing.join(', ')} missing`] : [];
}

async function gitFacts(runner: Runner, tree: string): Promise<{ commit?: string; dirty?: boolean }> {
  const head = await runner.run(['git', '-C', tree, 'rev-parse', 'HEAD'], { check: false });
  if (head.exitCode !== 0) return {};
  const st = await runner.run(['git', '-C', tree, 'status', '--porcelain'], { check: false });
  return { commit: head.stdout.trim(), dirty: st.stdout.trim() !== '' };
}

/** Copies the user's tree into the lab (read only on their side). */
export async function copySource(runner: Runner, up: UpstreamPaths, treeArg: string): Promise<TreeSource> {
  const tree = resolve(treeArg);
  const problems = treeProblems(tree);
  if (problems.length) throw new LabError(`--electrode-tree: ${problems.join('; ')}`, 'UPSTREAM_TREE');
  rmSync(up.source, { recursive: true, force: true });
  mkdirSync(up.root, { recursive: true });
  cpSync(tree, up.source, { recursive: true, filter: (p) => !skip(tree, p) });
  return { tree, ...(await gitFacts(runner, tree)), digest: treeDigest(up.source), buildDigest: treeDigest(up.source, notInReplicaBuild) };
}

/** Where the replica and client of a variant are. */
export function binariesOf(up: UpstreamPaths, digest: string, v: UpstreamVariant): { replica: string; client: string; tree: string } {
  const tree = up.build(digest, userBuildKey(v));
  return { replica: join(tree, 'bench', 'replica'), client: join(tree, 'bench', 'client'), tree };
}

function failure(what: string, r: { stderr: string; stdout: string; exitCode: number | null }): LabError {
  const lines = (r.stderr || r.stdout).split('\n').filter((l) => /error|Error|undefined reference|fatal/.test(l));
  const tail = (lines.length ? lines : (r.stderr || r.stdout).trim().split('\n')).slice(-12).join('\n');
  return new LabError(`${what} failed (exit ${r.exitCode}):\n${tail}`, 'UPSTREAM_BUILD');
}

/**
 * bench/replica and bench/client with the variant's switches. Only
 * vr/replica.cc has #ifdefs on them, and make does not track CXXFLAGS: a
 * second set starts from a copy of the plain build and rebuilds
 * vr/replica.cc (and the links) alone.
 */
export async function buildUserSpace(runner: Runner, up: UpstreamPaths, digest: string, v: UpstreamVariant, jobs = 2): Promise<string> {
  const key = userBuildKey(v);
  const dir = up.build(digest, key);
  const built = (d: string) => existsSync(join(d, 'bench', 'replica')) && existsSync(join(d, 'bench', 'client'));
  if (built(dir)) return dir;
  // built aside and renamed: a build killed half-way is never taken for a finished one
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  const plain = up.build(digest, 'plain');
  // the plain build first: every other set of switches then recompiles one file
  if (key !== 'plain' && !built(plain)) await buildUserSpace(runner, up, digest, generatedVariant('baseline'), jobs);
  if (key !== 'plain' && built(plain)) {
    cpSync(plain, tmp, { recursive: true, preserveTimestamps: true });
    rmSync(join(tmp, '.obj', 'vr', 'replica.o'), { force: true });
    rmSync(join(tmp, 'bench', 'replica'), { force: true });
    rmSync(join(tmp, 'bench', 'client'), { force: true });
  } else {
    cpSync(up.source, tmp, { recursive: true });
  }
  const argv = userSpaceBuildArgv(tmp, v.userDefines, jobs);
  const r = await runner.run(argv, { check: false, timeoutMs: 900_000 });
  if (r.exitCode !== 0) throw failure(`building upstream's user space (${argv.join(' ')})`, r);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}

export interface PreparedVariant {
  dir: string;
  config: string;
  /** Unified diff from the user's tree to what runs (the scenario's files included). */
  patch: string;
  edits: string[];
  userBuild: string;
}

/**
 * A variant's files: the plan's values (generated) or the scenario's as they
 * are, plus the toolchain edits, written into a fresh copy of xdp-handler/;
 * then the eBPF object and the loader are built there.
 */
export async function prepareVariant(runner: Runner, up: UpstreamPaths, digest: string, plan: Plan, v: UpstreamVariant, scenario?: ScenarioFiles): Promise<PreparedVariant> {
  const dir = up.variant(v.id);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(up.source, 'xdp-handler'), join(dir, 'xdp-handler'), { recursive: true });
  const pristine = readSources(up.source);
  const start: UpstreamSources = { ...pristine };
  if (v.values === 'scenario') {
    if (!scenario) throw new LabError(`variant ${v.id} needs the scenario's files`, 'SCENARIO_FILES');
    start[UPSTREAM_FILES.config] = scenario.config;
    start[UPSTREAM_FILES.user] = scenario.fastUser;
    start[UPSTREAM_FILES.common] = scenario.fastCommon;
  }
  // throws UpstreamPatchError naming every anchor the tree lacks
  const patched = upstreamPatch(start, upstreamLabOf(plan, join(dir, 'config.txt')), { values: v.values === 'generated' });
  const files = patched.files;
  writeFileSync(join(dir, 'config.txt'), files[UPSTREAM_FILES.config] as string);
  for (const f of [UPSTREAM_FILES.user, UPSTREAM_FILES.common, UPSTREAM_FILES.kern] as UpstreamFile[]) writeFileSync(join(dir, f), files[f] as string);
  const order = Object.values(UPSTREAM_FILES) as UpstreamFile[];
  const patch = order.filter((f) => pristine[f] !== undefined && files[f] !== undefined && files[f] !== pristine[f]).map((f) => unifiedDiff(f, pristine[f] as string, files[f] as string)).join('');
  writeFileSync(join(dir, 'patch.diff'), patch);
  const edits = [
    ...(v.values === 'scenario' ? [`config.txt, xdp-handler/fast_user.c, xdp-handler/fast_common.h: the scenario's own files, as they are`] : []),
    ...patched.edits.map((e) => `${e.file}: ${e.what}`),
  ];
  writeFileSync(join(dir, 'edits.txt'), edits.join('\n') + '\n');
  const kern = await runner.run(kernBuildArgv(dir, v.kernDefines), { check: false, timeoutMs: 300_000 });
  if (kern.exitCode !== 0) throw failure(`building ${v.id}'s fast_kern.c`, kern);
  const loader = await runner.run(loaderBuildArgv(dir), { check: false, timeoutMs: 300_000 });
  if (loader.exitCode !== 0) throw failure(`building ${v.id}'s loader (xdp-handler/fast)`, loader);
  const userBuild = await buildUserSpace(runner, up, digest, v);
  return { dir, config: join(dir, 'config.txt'), patch, edits, userBuild };
}

export function loadUpstreamState(up: UpstreamPaths): UpstreamLabState | undefined {
  if (!existsSync(up.stateFile)) return undefined;
  try {
    const s = JSON.parse(readFileSync(up.stateFile, 'utf8')) as UpstreamLabState;
    return s.kind === 'electrode-lab-upstream' ? s : undefined;
  } catch {
    return undefined;
  }
}

export function saveUpstreamState(up: UpstreamPaths, s: UpstreamLabState): void {
  mkdirSync(up.root, { recursive: true });
  writeFileSync(up.stateFile, JSON.stringify(s, null, 2) + '\n');
}

/** One line naming a tree: commit (and dirty), else the digest. */
export function describeSource(s: TreeSource): string {
  return s.commit ? `${s.tree} at ${s.commit.slice(0, 12)}${s.dirty ? ' (with uncommitted changes)' : ''}` : `${s.tree} (not a git tree; content sha256 ${s.digest.slice(0, 12)})`;
}

/** Size check for tests and status: the copy must not be the user's tree. */
export function isInside(child: string, parent: string): boolean {
  const r = relative(resolve(parent), resolve(child));
  return r === '' || (!r.startsWith('..') && !r.startsWith('/'));
}
