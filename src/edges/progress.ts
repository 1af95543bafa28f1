/**
 * Progress for long steps: an ora spinner when both stdout and stderr are
 * a terminal, plain lines otherwise or when CI=true (logs and test output
 * stay readable). A spinner with stdout piped (`| tee`) would redraw on the
 * terminal out of step with the results going through the pipe. Everything
 * goes to stderr so stdout stays machine-readable (--json); plain lines go
 * through the ordered channel of src/edges/output.ts, so each one is out before
 * anything written after it, on either stream.
 */
import ora from 'ora';
import { writeErr } from './output.js';

/** Progress reporting for long steps (ora in a terminal, plain lines otherwise). */
export interface Progress {
  step<T>(title: string, fn: () => Promise<T>): Promise<T>;
  info(line: string): void;
  warn(line: string): void;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export class PlainProgress implements Progress {
  constructor(private readonly write: (line: string) => void = (l) => writeErr(l + '\n')) {}
  async step<T>(title: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    this.write(`- ${title} ...`);
    try {
      const r = await fn();
      this.write(`✔ ${title} (${seconds(performance.now() - t0)})`);
      return r;
    } catch (e) {
      this.write(`✖ ${title} (${seconds(performance.now() - t0)})`);
      throw e;
    }
  }
  info(line: string): void {
    this.write(line);
  }
  warn(line: string): void {
    this.write(`warning: ${line}`);
  }
}

export class SpinnerProgress implements Progress {
  async step<T>(title: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const spinner = ora({ text: title, stream: process.stderr }).start();
    try {
      const r = await fn();
      spinner.succeed(`${title} (${seconds(performance.now() - t0)})`);
      return r;
    } catch (e) {
      spinner.fail(`${title} (${seconds(performance.now() - t0)})`);
      throw e;
    }
  }
  info(line: string): void {
    writeErr(line + '\n');
  }
  warn(line: string): void {
    writeErr(`warning: ${line}\n`);
  }
}

/** Silent progress, for library callers and tests that do not want output. */
export class QuietProgress implements Progress {
  async step<T>(_title: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }
  info(): void {}
  warn(): void {}
}

export interface Terminals {
  stdout: boolean;
  stderr: boolean;
}

/** A spinner only when both streams are terminals (one piped: plain lines) and CI is not set. */
export function makeProgress(env: NodeJS.ProcessEnv = process.env, tty: Terminals = { stdout: Boolean(process.stdout.isTTY), stderr: Boolean(process.stderr.isTTY) }): Progress {
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== '0' && env.CI !== 'false';
  return tty.stdout && tty.stderr && !ci ? new SpinnerProgress() : new PlainProgress();
}
