/**
 * bench --profile, the edge: perf record over the measured part of one
 * trial, then perf script folded into stacks and drawn as a flame graph
 * (the pure half is profiling.ts, profile.ts and flamegraph.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RunPaths } from '../edges/paths.js';
import { RunResult, Runner } from '../edges/runner.js';
import { ProfileRecord, profileFromPerfScript } from './profiling.js';
import { delay } from './trialProcs.js';
import { Trial } from './types.js';

/** perf's sampling rate for --profile: enough samples in 3 s, few enough interrupts on a VM. */
const PROFILE_HZ = 499;

export interface ProfileContext {
  opts: { warmup: number; duration?: number };
  run: RunPaths;
  runner: Runner;
}

/** perf record -a -g over the measured part of the client run, then the folded stacks and the flame graph. */
export async function recordProfile(ctx: ProfileContext, t: Trial, clientRun: Promise<RunResult>): Promise<ProfileRecord> {
  const dir = join(ctx.run.root, 'profiles');
  mkdirSync(dir, { recursive: true });
  const base = `${t.replicas}r-${t.arm}-${t.threads}t`;
  const rel = { svg: `profiles/${base}.svg`, folded: `profiles/${base}.folded` };
  const data = join(dir, `${base}.perf.data`);
  const fail = (problem: string): ProfileRecord => ({ ...rel, samples: 0, top: [], costs: {}, problem });
  let done = false;
  void clientRun.finally(() => (done = true));
  await Promise.race([delay(ctx.opts.warmup * 1000), clientRun]);
  if (done) return fail('the client finished within its warm-up: nothing to profile');
  const seconds = ctx.opts.duration ?? 3;
  const rec = await ctx.runner.run(['perf', 'record', '-a', '-g', '-F', String(PROFILE_HZ), '-o', data, '--', 'sleep', String(seconds)], { check: false, timeoutMs: (seconds + 60) * 1000 }).catch((e: Error) => ({ exitCode: 127, stdout: '', stderr: e.message }) as RunResult);
  if (rec.exitCode !== 0) return fail(`perf record failed (${rec.stderr.trim().split('\n').at(-1) ?? ''}); install linux-perf`);
  await clientRun.catch(() => undefined);
  const script = await ctx.runner.run(['perf', 'script', '-i', data], { check: false, bulkStdout: true, timeoutMs: 600_000 });
  if (script.exitCode !== 0) return fail(`perf script failed: ${script.stderr.trim().split('\n').at(-1) ?? ''}`);
  const p = profileFromPerfScript(script.stdout, {
    title: `${t.replicas} replicas, ${t.arm}, ${t.threads} client threads`,
    subtitle: `perf record -a -g -F ${PROFILE_HZ} for ${seconds} s of the measured part (whole machine: the lab's processes, kernel and eBPF), run ${ctx.run.id}`,
    ...rel,
  });
  writeFileSync(join(ctx.run.root, rel.svg), p.svgText);
  writeFileSync(join(ctx.run.root, rel.folded), p.foldedText);
  return p.record;
}
