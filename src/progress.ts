/**
 * Progress for long steps: an ora spinner in a terminal, plain lines when
 * stderr is not a TTY or CI=true (logs and test output stay readable).
 * Everything goes to stderr so stdout stays machine-readable (--json).
 */
import ora from 'ora';
import { Progress } from './providers/provider.js';

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export class PlainProgress implements Progress {
  constructor(private readonly write: (line: string) => void = (l) => process.stderr.write(l + '\n')) {}
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
    process.stderr.write(line + '\n');
  }
  warn(line: string): void {
    process.stderr.write(`warning: ${line}\n`);
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

export function makeProgress(env: NodeJS.ProcessEnv = process.env, isTty = Boolean(process.stderr.isTTY)): Progress {
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== '0' && env.CI !== 'false';
  return isTty && !ci ? new SpinnerProgress() : new PlainProgress();
}
