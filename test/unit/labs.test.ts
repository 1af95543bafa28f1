/**
 * The course labs must not rot: every `electrode-lab ...` line in a shell block
 * of labs/ names a real command with real options (checked against the CLI's
 * own commander definitions), and every relative link resolves.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { buildProgram } from '../../src/cli.js';

const LABS = resolve(import.meta.dirname, '..', '..', 'labs');

function labFiles(dir = LABS): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? labFiles(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : [],
  );
}

/** Lines of ```sh blocks that run electrode-lab. */
export function cliLines(markdown: string): string[] {
  const out: string[] = [];
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1]!.split('\n')) {
      const cmd = line.replace(/\s+#.*$/, '').trim();
      if (cmd.startsWith('electrode-lab ')) out.push(cmd);
    }
  }
  return out;
}

/** Shell-like split honouring single quotes (all the labs use). */
export function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/** Problems with one command line, judged by the program's own definitions. */
export function checkLine(program: Command, line: string): string[] {
  const args = words(line).slice(1);
  const problems: string[] = [];
  const known = (cmd: Command, flag: string) => cmd.options.some((o) => o.long === flag || o.short === flag);
  const takesValue = (cmd: Command, flag: string) => cmd.options.find((o) => o.long === flag || o.short === flag)?.required || cmd.options.find((o) => o.long === flag || o.short === flag)?.optional;
  let sub: Command | undefined;
  // `lab start 02`: a command with subcommands takes the next word as its subcommand
  let nested = false;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      const flag = a.split('=')[0]!;
      const owner = sub && known(sub, flag) ? sub : known(program, flag) ? program : undefined;
      if (!owner) {
        problems.push(`${line}: unknown option ${flag}${sub ? ` for '${sub.name()}'` : ''}`);
        continue;
      }
      if (takesValue(owner, flag) && !a.includes('=')) {
        i++;
        // `--committed <file...>`: every word up to the next option is its value
        if (owner.options.find((o) => o.long === flag || o.short === flag)?.variadic) while (args[i + 1] !== undefined && !args[i + 1]!.startsWith('-')) i++;
      }
      continue;
    }
    if (!sub || (sub.commands.length > 0 && !nested)) {
      const parent: Command = sub ?? program;
      const found = parent.commands.find((c) => c.name() === a);
      if (!found) {
        problems.push(`${line}: unknown command ${sub ? `${sub.name()} ` : ''}${a}`);
        break;
      }
      nested = sub !== undefined;
      sub = found;
      continue;
    }
    positional.push(a);
  }
  if (sub) {
    const declared = sub.registeredArguments;
    const variadic = declared.some((d) => d.variadic);
    if (!variadic && positional.length > declared.length) problems.push(`${line}: too many arguments for '${sub.name()}'`);
  }
  return problems;
}

describe('course labs', () => {
  const files = labFiles();
  const { program } = buildProgram({});

  it('has the seven exercises and an index', () => {
    const names = files.map((f) => f.slice(LABS.length + 1)).sort();
    expect(names).toEqual(['01-view-change/README.md', '02-five-and-seven/README.md', '03-fast-paths/README.md', '04-upstream/README.md', '05-crash-hunt/README.md', '06-comes-back/README.md', '07-one-pays/README.md', 'README.md']);
  });

  it('the checker itself catches a wrong command, option and argument count', () => {
    expect(checkLine(program, 'electrode-lab strat --name x')).toEqual(['electrode-lab strat --name x: unknown command strat']);
    expect(checkLine(program, 'electrode-lab start --fast')[0]).toMatch(/unknown option --fast for 'start'/);
    expect(checkLine(program, 'electrode-lab down now')[0]).toMatch(/too many arguments/);
    expect(checkLine(program, "electrode-lab bench --replica-args '3:--crash-after 500' --replicas 5")).toEqual([]);
    expect(checkLine(program, 'electrode-lab lab start 02')).toEqual([]);
    expect(checkLine(program, 'electrode-lab lab check 02 --dir x/')).toEqual([]);
    expect(checkLine(program, 'electrode-lab lab strat 02')[0]).toMatch(/unknown command lab strat/);
    expect(checkLine(program, 'electrode-lab lab start 02 03')[0]).toMatch(/too many arguments for 'start'/);
    expect(checkLine(program, 'electrode-lab lab check 02 --fast')[0]).toMatch(/unknown option --fast for 'check'/);
  });

  for (const file of files) {
    const rel = file.slice(LABS.length + 1);
    const text = readFileSync(file, 'utf8');
    it(`${rel}: every electrode-lab command exists with these options`, () => {
      const lines = cliLines(text);
      if (rel !== 'README.md') expect(lines.length).toBeGreaterThan(3);
      expect(lines.flatMap((l) => checkLine(program, l))).toEqual([]);
    });
    it(`${rel}: relative links resolve`, () => {
      const broken = [...text.matchAll(/\]\(([^)#]+)(#[^)]*)?\)/g)]
        .map((m) => m[1]!)
        .filter((href) => !/^[a-z]+:/.test(href))
        .filter((href) => !existsSync(resolve(dirname(file), href)));
      expect(broken).toEqual([]);
    });
  }
});
