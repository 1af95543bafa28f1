/**
 * `electrode-lab check-history <file>`: the bench's safety verdict for a
 * history recorded by hand (`client --history`), with the durability check
 * when the acknowledgement log and the replicas' committed logs are given.
 */
import { Command } from 'commander';
import { basename } from 'node:path';
import { parseHistory } from '../check/history.js';
import { LabError } from '../core/diagnostics.js';
import { analyzeTrial, isSafe, survivorDumps } from '../bench/safety.js';
import { CliContext } from './context.js';
import { readTextChunks } from '../edges/files.js';
import { Text } from '../core/text.js';

/** In chunks: a 10-minute soak's history is larger than one string can hold. */
function readText(file: string, what: string): Text {
  try {
    return readTextChunks(file);
  } catch (e) {
    throw new LabError(`cannot read the ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'CHECK_INPUT');
  }
}

export function registerCheck(program: Command, ctx: CliContext): void {
  program
    .command('check-history')
    .argument('<history>', "a client's --history file (JSON lines)")
    .description('check an operation history for linearizability, and optionally that every acknowledged request was committed')
    .option('--acks <file>', "the client's --ack-log file (`<client> <request> <opnum>` per acknowledged request)")
    .option('--committed <file...>', "replicas' --dump-log files (the survivors'); with --acks, every acknowledged request must sit in them at the op its reply named")
    .option('--json', 'print the verdict as JSON')
    .addHelpText(
      'after',
      `
The same check every bench trial runs (src/check/: Wing & Gong's search with
Lowe's memo, one key at a time). A timed-out operation may have taken effect
or not; the checker tries both. A key whose search exceeds the budget is
"unknown", never "linearizable". A failure prints the smallest part of the
history that fails on its own.

Exit: 0 linearizable and nothing lost; 1 not linearizable, lost or diverged,
or unknown; 2 a file that is not a history (every bad line is named).

Examples:
  $ electrode-lab client -d 3 -t 8 --history /tmp/h.jsonl --ack-log /tmp/acks
  $ electrode-lab check-history /tmp/h.jsonl
  $ electrode-lab check-history runs/<run>/nodes/client0/history-<trial>.jsonl --json`,
    )
    .action((file: string, opts: { acks?: string; committed?: string[]; json?: boolean }) => {
      const history = readText(file, 'history');
      parseHistory(history, basename(file)); // bad input: every problem at once, exit 2
      if (opts.committed && !opts.acks) throw new LabError('--committed needs --acks (the requests the client saw acknowledged)', 'CHECK_INPUT');
      const logs = new Map((opts.committed ?? []).map((f) => [basename(f), readText(f, 'committed log')] as const));
      const acks = opts.acks ? readText(opts.acks, 'acknowledgement log') : undefined;
      const rec = analyzeTrial({ history, ...(acks !== undefined ? { acks } : {}), dumps: survivorDumps(logs) });
      if (opts.json) ctx.out(JSON.stringify(rec, null, 2));
      else {
        ctx.out(`${rec.verdict}: ${rec.ops} ops on ${rec.keys} keys, ${rec.indeterminate} timed out, checked in ${rec.elapsedMs} ms`);
        if (acks !== undefined) ctx.out(`acknowledged: ${rec.acked}, lost: ${rec.lostAcked}${rec.lostExamples.length ? ` (e.g. ${rec.lostExamples.join(', ')})` : ''} against ${rec.logs} committed log(s)`);
        if (rec.divergence) ctx.out(`DIVERGED: ${rec.divergence}`);
        if (rec.failure && rec.verdict !== 'linearizable') ctx.out(rec.failure);
        if (rec.problem) ctx.out(`problem: ${rec.problem}`);
        // without --acks, durability was not asked for: say so only when it was
        for (const n of rec.notChecked) if (acks !== undefined || !n.startsWith('no ack log')) ctx.out(`not checked: ${n}`);
      }
      if (!isSafe(rec) || rec.verdict !== 'linearizable' || rec.problem || (acks !== undefined && rec.durability !== 'ok')) ctx.setExitCode(1);
    });
}
