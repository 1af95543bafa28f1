/**
 * What the bench samples while a trial's client runs: every replica's VmRSS
 * (--soak, --rss-sample-ms) and the CPU time of the lab's processes, through
 * the node's exec (host /proc on a netns lab, each node's own kernel
 * otherwise). The pure halves are rss.ts and cpu.ts.
 */
import { PlanNode } from '../core/plan.js';
import { Started } from '../lab/replicas.js';
import { RunResult } from '../edges/runner.js';
import { CpuSample, cpuSampleScript, parseCpuSample } from './cpu.js';
import { BenchLab } from './lab.js';
import { RSS_RULE, RssSeries, parseRssSample, rssSampleScript, rssVerdict } from './rss.js';
import { TrialProcs, delay } from './trialProcs.js';

/** --rss-sample-ms: every replica's VmRSS, through the node's exec, until the client ends. */
export async function sampleRss(lab: BenchLab, procs: TrialProcs, clientNode: PlanNode, clientRun: Promise<RunResult>, intervalMs: number) {
  const series = new Map<number, RssSeries>();
  const t0 = Date.now();
  let done = false;
  void clientRun.finally(() => (done = true));
  let problem: string | undefined;
  while (!done) {
    const groups: { node: PlanNode; of: Started[] }[] = lab.sharedKernel ? [{ node: clientNode, of: [...procs.started] }] : procs.started.map((x) => ({ node: x.node, of: [x] }));
    for (const g of groups) {
      const r = await lab.node(g.node).exec(['sh', '-c', rssSampleScript(g.of.map((x) => x.rec.pid))], { check: false, timeoutMs: 10_000 }).catch(() => undefined);
      if (!r || r.exitCode !== 0) {
        problem = `sampling on ${g.node.name} failed`;
        continue;
      }
      const kb = parseRssSample(r.stdout);
      for (const x of g.of) {
        const v = kb.get(x.rec.pid);
        if (v === undefined) continue;
        const sr = series.get(x.rec.pid) ?? { node: x.node.name, pid: x.rec.pid, samples: [] };
        sr.samples.push([Date.now() - t0, v]);
        series.set(x.rec.pid, sr);
      }
    }
    await Promise.race([delay(intervalMs), clientRun]);
  }
  const all = [...series.values()];
  return { intervalMs, rule: RSS_RULE, verdicts: all.map(rssVerdict), series: all, ...(problem ? { problem } : {}) };
}

/**
 * One CPU sample per kernel the lab runs on: a netns lab's nodes share
 * this host's (one sample with every pid), other labs' nodes have their
 * own (one per node, with that node's process). Undefined when any
 * sample failed: no CPU figures are better than wrong ones.
 */
export async function sampleCpu(warn: (line: string) => void, lab: BenchLab, started: Started[], clientNode: PlanNode): Promise<CpuSample[] | undefined> {
  const groups: { node: PlanNode; pids: number[] }[] = lab.sharedKernel
    ? [{ node: clientNode, pids: started.map((x) => x.rec.pid) }]
    : [...started.map((x) => ({ node: x.node, pids: [x.rec.pid] })), ...(started.some((x) => x.node === clientNode) ? [] : [{ node: clientNode, pids: [] }])];
  const out: CpuSample[] = [];
  for (const g of groups) {
    const r = await lab.node(g.node).exec(['sh', '-c', cpuSampleScript(g.pids)], { check: false, timeoutMs: 30_000 }).catch(() => undefined);
    const parsed = r && r.exitCode === 0 ? parseCpuSample(r.stdout) : 'the sampling command failed';
    if (typeof parsed === 'string') {
      warn(`CPU sample on ${g.node.name}: ${parsed}; this trial has no CPU figures`);
      return undefined;
    }
    out.push(parsed);
  }
  return out;
}