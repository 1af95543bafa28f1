/**
 * `electrode-lab lab list|start|check|reset|hint <lab>`: the course labs of
 * labs/ that check themselves. The logic is in src/course/; this is the edge.
 */
import { Command, InvalidArgumentError } from 'commander';
import { randomInt } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { DiagnosticsError, LabError } from '../core/diagnostics.js';
import { createLab, prepareLab } from '../providers/bringup.js';
import { LabPaths, runsHome } from '../edges/paths.js';
import { planLab } from '../core/plan.js';
import { probeHostFacts, which } from '../edges/probe.js';
import { normalizeSpec } from '../core/spec.js';
import { loadPlan, loadProcessRecords } from '../edges/state.js';
import { parseAnswers, templateKeys } from '../course/answers.js';
import { formatVerdict, verdictCounts, verdictOk } from '../course/check.js';
import { asFault } from '../course/crashhunt.js';
import { CoursePaths, newRecord } from '../course/evidence.js';
import { gatherEvidence, loadEvidence, loadRecord, saveRecord } from '../course/gather.js';
import { runIncident } from '../course/incident.js';
import { LABS, answersTemplate, findLab, labFolder, missingToolLines } from '../course/registry.js';
import { releaseExplanations } from '../course/holdback.js';
import { openLab } from '../providers/lab.js';
import { resetLab, unreapedNote } from '../course/reset.js';
import { initName } from '../edges/proc.js';
import { formatLabList, labStateText, stateWhereText, upCommandOf } from '../course/status.js';
import { upstreamBuildsDir } from '../upstream/tree.js';
import { CliContext } from './context.js';

const rel = (p: string) => {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
};

function seedArg(v: string): string {
  if (!/^\d{1,10}$/.test(v)) throw new InvalidArgumentError('a seed is a whole number, e.g. 4711.');
  return String(Number(v));
}

export function registerLab(program: Command, ctx: CliContext): void {
  const lab = program
    .command('lab')
    .description('course labs (labs/) that check themselves: list, start, check, reset, hint')
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab lab list                 the labs, their state on this machine, time needed
  $ electrode-lab lab start 02             brings up exactly the lab the exercise needs (its own --name)
  $ electrode-lab lab check 02             checks labs/02-five-and-seven/answers.yaml against what the lab recorded
  $ electrode-lab lab check 02 --dir alice/  an instructor checks a handed-in work folder
  $ electrode-lab lab hint 02              the next hint
  $ electrode-lab lab reset 02             back to the start, nothing left behind

Each exercise is labs/<lab>/README.md; answers go into labs/<lab>/answers.yaml.`,
    );

  lab
    .command('list')
    .description('the course labs, their state on this machine and the time they take')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const rows = [];
      for (const def of LABS) {
        const paths = new LabPaths(ctx.home(), def.spec.name);
        const plan = loadPlan(paths);
        let running = 0;
        if (plan) {
          const provider = ctx.getProvider(plan.provider);
          const pctx = ctx.providerContext(paths);
          for (const r of loadProcessRecords(paths)) if (r.name === 'replica' && (await provider.alive(plan, r, pctx))) running++;
        }
        const record = loadRecord(CoursePaths.of(ctx.home(), def.slug));
        rows.push({ def, state: labStateText({ up: plan !== undefined, ...(plan ? { replicas: plan.cluster.n } : {}), running, ...(record ? { record } : {}) }) });
      }
      if (o.json) ctx.out(JSON.stringify(rows.map(({ def, state }) => ({ id: def.id, lab: def.slug, title: def.title, minutes: def.minutes, prerequisites: def.prerequisites, name: def.spec.name, state })), null, 2));
      else ctx.out(`${formatLabList(rows)}\n\n${stateWhereText({ courseDir: dirname(CoursePaths.of(ctx.home(), 'x').root), labsDir: LabPaths.labsDir(ctx.home()), runsDir: runsHome(ctx.env), upstreamBuilds: upstreamBuildsDir(ctx.home()) })}`);
    });

  lab
    .command('start')
    .description("bring up the lab an exercise needs, under the exercise's own name (the crash hunt also plants its fault and runs the incident)")
    .argument('<lab>', 'lab id (01) or folder name (01-view-change)')
    .option('--seed <n>', 'crash hunt only: the seed the planted fault is derived from (default: random)', seedArg)
    .action(async (ref: string, o: { seed?: string }) => {
      const def = findLab(ref);
      if (o.seed !== undefined && !def.incident) throw new DiagnosticsError([{ code: 'BAD_OPTION', subject: '--seed', message: `lab ${def.id} plants nothing`, hint: 'only the crash hunt (05) takes --seed' }]);
      const home = ctx.home();
      const paths = new LabPaths(home, def.spec.name);
      const work = CoursePaths.of(home, def.slug);
      const progress = ctx.progress();
      if (ctx.globals().dryRun) {
        ctx.out(`[dry-run] would run: ${upCommandOf(def)}${def.incident ? ', then plant a fault and run the incident' : ''}; record in ${work.root}`);
        return;
      }
      const existing = loadRecord(work);
      if (loadPlan(paths) && existing && (!def.incident || existing.runDir)) {
        ctx.out(`lab ${def.slug} is already started (lab '${def.spec.name}' is up): carry on with ${rel(labFolder(def))}/README.md, or \`electrode-lab lab reset ${def.id}\` to start over`);
        return;
      }
      if (loadPlan(paths)) throw new LabError(`lab '${def.spec.name}' is up but was not started by \`lab start ${def.id}\`; run \`electrode-lab lab reset ${def.id}\` first`, 'LAB_ALREADY_UP');
      const { spec, diagnostics } = normalizeSpec(def.spec);
      if (!spec) throw new DiagnosticsError(diagnostics, 'spec');
      const planned = planLab(spec, probeHostFacts(home, ctx.env));
      if (!planned.plan) throw new DiagnosticsError(planned.diagnostics, 'plan');
      const provider = ctx.getProvider(planned.plan.provider);
      const pctx = ctx.providerContext(paths);
      const problems = await provider.probe(pctx);
      if (problems.length) throw new DiagnosticsError(problems, 'preconditions');
      const plan = await prepareLab(planned.plan, provider, pctx);
      for (const l of missingToolLines(def, (c) => which(c, ctx.env) !== undefined)) progress.warn(l);
      progress.info(`lab ${def.slug}: ${upCommandOf(def)}`);
      await createLab(plan, provider, pctx);
      const record = newRecord(def.slug, def.spec.name);
      mkdirSync(work.root, { recursive: true });
      if (def.incident) {
        record.seed = o.seed ?? String(randomInt(1, 2 ** 31));
        saveRecord(work, record);
        const waitS = Number(ctx.env.ELECTRODE_LAB_CORE_WAIT_S ?? '0');
        const res = await runIncident(record.seed, { env: ctx.env, runner: ctx.runner(), progress, lab: openLab(provider, plan, { runner: ctx.runner(), paths, progress }), coreLockWaitMs: Number.isFinite(waitS) && waitS > 0 ? waitS * 1000 : 0 }).catch((e: Error) => {
          throw new LabError(`the incident did not run to its end: ${e.message}\nrun \`electrode-lab lab reset ${def.id}\` and then \`electrode-lab lab start ${def.id}\` again`, 'INCIDENT_FAILED');
        });
        record.runDir = res.run.root;
        saveRecord(work, record);
        ctx.out(`the incident is over: ${res.crashes.length} crash folder(s) in ${res.run.root}`);
        ctx.out(`investigate with: electrode-lab crashes ${res.run.id} | electrode-lab stats --name ${plan.lab} | electrode-lab status --name ${plan.lab}`);
      } else {
        saveRecord(work, record);
        ctx.out(`lab '${plan.lab}' is up: ${plan.nodes.map((n) => `${n.name}=${n.ip}:${n.port}`).join(' ')}`);
      }
      ctx.out(`exercise: ${rel(labFolder(def))}/README.md; answers: ${rel(answersTemplate(def))}; check: electrode-lab lab check ${def.id}`);
    });

  lab
    .command('check')
    .description('compare the answers with what the lab recorded: what is right, what is wrong and where to look (exit 0 only when all is right)')
    .argument('<lab>', 'lab id (01) or folder name')
    .option('--dir <folder>', 'check a handed-in work folder (its answers.yaml and evidence) instead of this machine')
    .option('--answers <file>', 'the answers file (default: labs/<lab>/answers.yaml, or <folder>/answers.yaml with --dir)')
    .option('--json', 'machine-readable verdict')
    .action(async (ref: string, o: { dir?: string; answers?: string; json?: boolean }) => {
      const def = findLab(ref);
      const live = o.dir === undefined;
      const work = live ? CoursePaths.of(ctx.home(), def.slug) : new CoursePaths(resolve(o.dir!));
      if (!live && !existsSync(work.root)) throw new LabError(`${work.root} does not exist; give the folder a student handed in (it holds lab.json, answers.yaml, evidence/)`, 'NO_FOLDER');
      const answersFile = resolve(o.answers ?? (live ? answersTemplate(def) : work.answersCopy));
      if (!existsSync(answersFile)) throw new LabError(`${answersFile} does not exist; copy the template ${rel(answersTemplate(def))} and fill it in`, 'NO_ANSWERS');
      const known = templateKeys(readFileSync(answersTemplate(def), 'utf8'));
      const parsed = parseAnswers(readFileSync(answersFile, 'utf8'), rel(answersFile), known);
      if (parsed.diagnostics.length) throw new DiagnosticsError(parsed.diagnostics, 'answers');
      if (live) {
        mkdirSync(work.root, { recursive: true });
        gatherEvidence(def, work, ctx.home(), runsHome(ctx.env));
        if (answersFile !== work.answersCopy) copyFileSync(answersFile, work.answersCopy);
      }
      const verdict = def.check(parsed.answers, loadEvidence(work));
      const ok = verdictOk(verdict);
      const released = live && ok ? releaseExplanations(work) : [];
      if (live) {
        const record = loadRecord(work) ?? newRecord(def.slug, def.spec.name);
        const c = verdictCounts(verdict);
        const fault = def.incident ? asFault((parsed.answers as { diagnosis?: { fault?: unknown } }).diagnosis?.fault) : undefined;
        record.checks.push({ at: new Date().toISOString(), right: c.ok, total: verdict.items.length, ok, ...(fault ? { answer: fault } : {}) });
        saveRecord(work, record);
        writeFileSync(work.verdictFile, formatVerdict(verdict) + '\n');
      }
      if (o.json) ctx.out(JSON.stringify({ ...verdict, ok, folder: work.root }, null, 2));
      else {
        ctx.out(formatVerdict(verdict));
        if (live) ctx.out(`hand in ${work.root} (an instructor checks it with \`electrode-lab lab check ${def.id} --dir <that folder>\`)`);
        if (released.length) ctx.out(explanationsText(released, 'the lab held back how electrode-lab explains each crash; compare it with yours'));
      }
      if (!ok) ctx.setExitCode(1);
    });

  lab
    .command('reset')
    .description("back to the start: the exercise's labs (processes, namespaces, pins, state), its run folders and its work folder are removed")
    .argument('<lab>', 'lab id (01) or folder name')
    .action(async (ref: string) => {
      const def = findLab(ref);
      const { removed, unreaped } = await resetLab(def, { home: ctx.home(), runsDir: runsHome(ctx.env), runner: ctx.runner(), progress: ctx.progress(), getProvider: (n) => ctx.getProvider(n) });
      ctx.out(removed.length ? [`lab ${def.slug} reset; removed:`, ...removed.map((r) => `  ${r}`)].join('\n') : `lab ${def.slug}: nothing to reset`);
      if (unreaped.length) ctx.out(unreapedNote(unreaped, initName()));
      ctx.out(`your answers (${rel(answersTemplate(def))}) are yours and stay`);
    });

  lab
    .command('hint')
    .description('the next hint for an exercise (one at a time; shown hints are remembered)')
    .argument('<lab>', 'lab id (01) or folder name')
    .option('--explanations', 'lab 04: put the crash explanations the lab holds back (explain.txt, the `why:` lines) into the crash folders now, and print them')
    .action((ref: string, o: { explanations?: boolean }) => {
      const def = findLab(ref);
      const work = CoursePaths.of(ctx.home(), def.slug);
      const record = loadRecord(work) ?? newRecord(def.slug, def.spec.name);
      if (o.explanations) {
        if (!def.holdsExplanations) throw new LabError(`lab ${def.id} holds no explanations back (only ${LABS.filter((l) => l.holdsExplanations).map((l) => l.id).join(', ')} do); run \`electrode-lab lab hint ${def.id}\` for its hints`, 'NO_HELD_EXPLANATIONS');
        const released = releaseExplanations(work);
        record.explanationsShown = true;
        saveRecord(work, record);
        ctx.out(released.length ? explanationsText(released, 'the crash explanations, back in their folders (explain.txt); later runs keep theirs') : `lab ${def.id} held no explanation back (no crash captured yet); from now on runs keep theirs`);
        return;
      }
      const k = record.hintsShown;
      if (k >= def.hints.length) {
        ctx.out([`all ${def.hints.length} hints for ${def.slug} are shown:`, ...def.hints.map((h, i) => `  ${i + 1}. ${h}`)].join('\n'));
        return;
      }
      ctx.out(`hint ${k + 1} of ${def.hints.length} (${def.slug}): ${def.hints[k]}`);
      record.hintsShown = k + 1;
      saveRecord(work, record);
    });

  for (const c of lab.commands) c.exitOverride().showHelpAfterError('(run with --help for usage and examples)');
}

function explanationsText(released: { dir: string; explanation: string[] }[], head: string): string {
  return [`${head}:`, ...released.flatMap((r) => [`  ${r.dir}/explain.txt`, ...r.explanation.map((l) => `    why: ${l}`)])].join('\n');
}
