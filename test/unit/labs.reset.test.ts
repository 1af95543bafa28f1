/**
 * `lab reset` and processes that ended but are not reaped yet: what `down`
 * ends is reparented to PID 1, and `ps` lists it as <defunct> until PID 1
 * collects it (a second or two under some container supervisors). Reset
 * waits for that, and names what is left. Real zombies: a child whose
 * parent exec'd a program that reaps late (perl) or never (sleep).
 */
import { execa, ResultPromise } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LabPaths } from '../../src/edges/paths.js';
import { unreaped } from '../../src/edges/proc.js';
import { Provider } from '../../src/providers/provider.js';
import { QuietProgress } from '../../src/edges/progress.js';
import { findLab } from '../../src/course/registry.js';
import { resetLab, unreapedNote } from '../../src/course/reset.js';
import { ExecaRunner } from '../../src/edges/runner.js';
import { saveProcessRecord } from '../../src/edges/state.js';
import { waitFor } from '../helpers/netns.helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'el-reset-'));
const parents: ResultPromise[] = [];
afterAll(async () => {
  for (const p of parents) p.kill('SIGKILL');
  await Promise.allSettled(parents);
  rmSync(tmp, { recursive: true, force: true });
});

/** A zombie child of `parentScript` (exec'd after the child ended); its PID. */
async function zombieUnder(parentScript: string): Promise<number> {
  const p = execa('sh', ['-c', `sleep 0 & echo $!; exec ${parentScript}`], { reject: false });
  parents.push(p);
  let out = '';
  p.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  await waitFor('the child PID', () => /^\d+\n/.test(out), 5000);
  const pid = Number(out.trim().split('\n')[0]);
  await waitFor('the child to end', () => unreaped([pid]).length === 1, 5000);
  return pid;
}

/** Down has nothing to take down here: the lab has no namespaces, only the process records (a stand-in provider, named so). */
const noNamespacesProvider = { name: 'netns', down: async () => {} } as unknown as Provider;

function deps(home: string, reapWaitMs: number) {
  return { home, runsDir: join(tmp, 'runs'), runner: new ExecaRunner(), progress: new QuietProgress(), getProvider: () => noNamespacesProvider, reapWaitMs };
}

describe('lab reset waits for PID 1 to reap what it ended', () => {
  it('a zombie reaped a moment later: reset returns after it is gone', async () => {
    const home = join(tmp, 'h1');
    const pid = await zombieUnder(`perl -e 'select(undef, undef, undef, 0.4); wait'`);
    saveProcessRecord(new LabPaths(home, 'lab01'), { node: 'replica0', name: 'replica', pid, argv: [], logFile: '' });
    expect(unreaped([pid])).toEqual([pid]);
    const r = await resetLab(findLab('01'), deps(home, 10_000));
    expect(r.unreaped).toEqual([]);
    expect(unreaped([pid])).toEqual([]);
    expect(r.removed).toContain("lab 'lab01' (processes, namespaces, pins, state folder)");
  });

  it('a zombie nobody reaps in time: reset says which, and why nothing is left to do', async () => {
    const home = join(tmp, 'h2');
    const pid = await zombieUnder('sleep 60');
    saveProcessRecord(new LabPaths(home, 'lab01'), { node: 'replica0', name: 'replica', pid, argv: [], logFile: '' });
    const r = await resetLab(findLab('01'), deps(home, 100));
    expect(r.unreaped).toEqual([pid]);
    expect(unreapedNote(r.unreaped, 'process_api')).toBe(
      `1 process(es) of the lab have ended but \`ps\` still lists them as <defunct> (pid ${pid}) until PID 1 (process_api) collects their exit status; they hold no memory, sockets, ports or eBPF programs, and nothing is left to do`,
    );
  });
});
