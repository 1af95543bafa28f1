/**
 * The upstream side of `bench --impl ours,upstream`: a self-contained trial
 * runner behind a narrow interface, so the bench loop only asks
 *
 *   forLab(lab)            once per lab size, after the bench brought the lab up
 *   trial(t, lab, run)     one trial of upstream, a TrialRecord like ours
 *
 * The bench owns the run folder and the core pattern (so upstream's cores
 * land in the same cores/), the schedule (arms, threads, repeats, the
 * interleaving of ours and upstream) and the tables; upstream's trials use
 * the same arms (as compile-time switches), upstream's own client and the
 * user's tree, copied per lab size with the builds shared (tree.ts).
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { RunPaths } from '../edges/paths.js';
import { Progress } from '../providers/provider.js';
import { BenchOptions, Trial, TrialRecord } from '../bench/types.js';
import type { TrialImpl } from '../bench/trial.js';
import { UpstreamCluster, UpstreamLabHandle } from './cluster.js';
import { stopUpstream, upstreamTrial } from './session.js';
import { loadProcessRecords } from '../edges/state.js';
import { PreparedVariant, UpstreamLabState, UpstreamPaths, copySource, describeSource, loadUpstreamState, saveUpstreamState, treeProblems } from './tree.js';
import { UPSTREAM_ARMS, UpstreamArm, generatedVariant } from './variant.js';

/** Upstream's client counts requests, not seconds: a duration becomes this many requests per second per logical client. */
export const UPSTREAM_REQUESTS_PER_S = 1000;

/** What one upstream trial's client is asked for, from the bench's load. */
export function upstreamLoad(opts: Pick<BenchOptions, 'requests' | 'duration' | 'warmup' | 'timeoutMs'>, threads: number): { requests: number; threads: number; warmupSec: number; timeoutMs: number } {
  const perClient = opts.requests !== undefined ? Math.ceil(opts.requests / threads) : Math.max(100, Math.round((opts.duration ?? 3) * UPSTREAM_REQUESTS_PER_S));
  // upstream's -w takes whole seconds
  return { requests: perClient, threads, warmupSec: Math.ceil(opts.warmup), timeoutMs: opts.timeoutMs };
}

export class UpstreamBench implements TrialImpl {
  private cluster?: UpstreamCluster;
  private labKey = '';
  private readonly prepared = new Map<string, PreparedVariant>();
  constructor(readonly tree: string, private readonly progress: Progress) {
    const bad = treeProblems(tree);
    if (bad.length) throw new LabError(`--electrode-tree: ${bad.join('; ')}`, 'UPSTREAM_TREE');
  }

  /** The tree a lab already runs (`up --electrode-tree`), for `bench --impl upstream` without --electrode-tree. */
  static treeOf(lab: { paths: UpstreamLabHandle['paths'] }): string | undefined {
    const st = loadUpstreamState(new UpstreamPaths(lab.paths));
    return st && existsSync(st.source.tree) ? st.source.tree : undefined;
  }

  /** Once per lab size: the tree copied into the lab (builds are shared), each node's own mount namespace. */
  async forLab(lab: UpstreamLabHandle): Promise<void> {
    const key = `${lab.plan.lab}/${lab.plan.cluster.n}`;
    if (key === this.labKey && this.cluster) return;
    const up = new UpstreamPaths(lab.paths);
    // what `up --electrode-tree` left running holds the ports and the interfaces' hooks the trials need
    if (loadProcessRecords(lab.paths).some((r) => r.name.startsWith('upstream-'))) {
      for (const l of await stopUpstream(lab)) this.progress.info(`before the bench: ${l}`);
    }
    let state = loadUpstreamState(up);
    if (!state || state.source.tree !== this.tree || state.scenario) {
      const source = await this.progress.step(`copy the upstream tree into lab '${lab.plan.lab}' (${lab.plan.cluster.n} replicas)`, () => copySource(lab.runner, up, this.tree));
      state = { kind: 'electrode-lab-upstream', version: 1, source, sharedBpffs: false, variants: {} } satisfies UpstreamLabState;
      saveUpstreamState(up, state);
    }
    this.cluster = new UpstreamCluster(lab, state);
    this.prepared.clear();
    this.labKey = key;
    await this.cluster.ensureNodes(generatedVariant('baseline'));
    this.progress.info(`upstream: ${describeSource(state.source)}`);
  }

  /** One trial; the record says impl upstream, the tree, its commit and the patch. */
  async trial(t: Trial, _lab: UpstreamLabHandle, run: RunPaths, opts: BenchOptions): Promise<TrialRecord> {
    const cluster = this.cluster;
    if (!cluster) throw new LabError('UpstreamBench.trial before forLab', 'UPSTREAM_STATE');
    if (!(UPSTREAM_ARMS as readonly string[]).includes(t.arm)) throw new LabError(`arm ${t.arm} has no upstream counterpart`, 'UPSTREAM_ARM');
    const v = generatedVariant(t.arm as UpstreamArm);
    let prep = this.prepared.get(v.id);
    if (!prep) {
      prep = await cluster.prepare(v);
      this.prepared.set(v.id, prep);
    }
    // the lab folder goes with the lab when the bench resizes it: the run keeps its own copy of the patch
    const patch = join(run.root, `patch.${t.replicas}r-${v.id}.diff`);
    if (!existsSync(patch)) copyFileSync(join(prep.dir, 'patch.diff'), patch);
    const { rec } = await upstreamTrial(cluster, v, prep, t, upstreamLoad(opts, t.threads), run, { suffix: `.t${t.seq}` });
    if (rec.upstream) rec.upstream.patch = patch;
    return rec;
  }
}
