/** The built CLI (node dist/src/cli.js): usage errors exit 2 and change nothing; --help teaches. */
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const home = mkdtempSync(join(tmpdir(), 'el-cli-'));

function cli(...args: string[]) {
  return execa('node', [CLI, ...args], { reject: false, env: { ELECTRODE_LAB_HOME: home, CI: 'true' } });
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does it)`);
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

function homeUntouched(): void {
  expect(existsSync(join(home, 'labs')) ? readdirSync(join(home, 'labs')) : []).toEqual([]);
}

describe('usage errors: exit 2, a clear message, nothing changed', () => {
  it('unknown option', async () => {
    const r = await cli('up', '--replicaz', '5');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("unknown option '--replicaz'");
    expect(r.stderr).toContain('--help');
    homeUntouched();
  });
  it('unknown command', async () => {
    const r = await cli('upp');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'upp'/);
  });
  it('a value that is not a number', async () => {
    const r = await cli('up', 'five');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/'five' is invalid.*must be a whole number/s);
    const m = await cli('up', '3', '--mtu', '15k');
    expect(m.exitCode).toBe(2);
    expect(m.stderr).toMatch(/--mtu/);
  });
  it('every spec problem at once, with codes and hints', async () => {
    const r = await cli('up', '4', '--mtu', '9000', '--provider', 'docker', '--name', 'x');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('nothing was changed');
    expect(r.stderr).toContain('SPEC_EVEN_REPLICAS replicas=4: Paxos needs 2f+1 replicas; use 3 or 5');
    expect(r.stderr).toContain('SPEC_MTU_TOO_LARGE_FOR_XDP mtu=9000');
    expect(r.stderr).toContain('SPEC_UNKNOWN_PROVIDER provider=docker: no such provider; registered providers: netns, vagrant');
    homeUntouched();
  });
  it('plan problems (subnet too small) with the fix', async () => {
    const r = await cli('up', '7', '--subnet', '10.5.0.0/28', '--provider', 'netns');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('SPEC_SUBNET_TOO_SMALL subnet=10.5.0.0/28');
    expect(r.stderr).toContain('use a /27 or larger');
    homeUntouched();
  });
  it('--lab with a missing file, and a file with unknown fields', async () => {
    const r = await cli('up', '--lab', '/nonexistent/lab.yaml');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('SPEC_FILE --lab /nonexistent/lab.yaml: no such file');
    const f = join(home, 'bad.yaml');
    writeFileSync(f, 'replica: 5\n');
    const b = await cli('render', '--lab', f);
    expect(b.exitCode).toBe(2);
    expect(b.stderr).toContain('SPEC_UNKNOWN_FIELD');
    expect(b.stderr).toContain('fields are name, replicas');
  });
  it('a bad lab name', async () => {
    const r = await cli('up', '--name', 'Bad Name');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('SPEC_BAD_NAME');
  });
});

describe('commands on a lab that is not up: exit 1 naming `electrode-lab up`', () => {
  it.each([['status'], ['exec', 'replica0', '--', 'true']])('%s', async (...args) => {
    const r = await cli('--name', 'nolab', ...args);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("lab 'nolab' is not up; run `electrode-lab up --name nolab`");
  });
  it('down on a lab that never existed is a no-op success (idempotent)', async () => {
    const r = await cli('down', '--name', 'nolab');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("lab 'nolab' is down (nothing was left)");
  });
});

describe('render touches nothing and prints every derived file', () => {
  it('render 7', async () => {
    const r = await cli('render', '7', '--name', 'seven');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('# ---- files/replica.config ----\nf 3\nreplica 10.77.0.10:51000\n');
    expect(r.stdout).toContain('peer 6 10.77.0.16 ');
    expect(r.stdout).toContain('# ---- Vagrantfile ----');
    expect(r.stdout).toContain('Vagrant.configure("2")');
    expect(r.stdout).toContain('config.vm.define "replica6"');
    homeUntouched();
  });
  it('render --json prints only the plan, as JSON', async () => {
    const r = await cli('render', '5', '--json');
    expect(r.exitCode).toBe(0);
    const plan = JSON.parse(r.stdout) as { cluster: { n: number }; nodes: unknown[] };
    expect(plan.cluster.n).toBe(5);
    expect(plan.nodes).toHaveLength(6);
  });
});

describe('--help on every command teaches with examples', () => {
  it.each(['', 'up', 'down', 'status', 'exec', 'render'])('electrode-lab %s --help', async (cmd) => {
    const r = await cli(...(cmd ? [cmd] : []), '--help');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain('$ electrode-lab');
  });
  it('up --help lists a flag for every spec field', async () => {
    const r = await cli('up', '--help');
    for (const flag of ['--clients', '--provider', '--subnet', '--base-port', '--mtu', '--cpus', '--memory', '--box', '--kernel', '--vm-driver', '--lab']) {
      expect(r.stdout).toContain(flag);
    }
  });
});

describe('check-history: the safety verdict for a history recorded by hand', () => {
  const dir = mkdtempSync(join(tmpdir(), 'el-hist-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const line = (o: Record<string, unknown>) => JSON.stringify(o);
  const put = (client: number, value: string, invoke: number, complete: number, result: number) => line({ client, key: 'k', op: 'append', value, invoke, complete, status: 'ok', result });
  const get = (client: number, result: string, invoke: number, complete: number) => line({ client, key: 'k', op: 'get', invoke, complete, status: 'ok', result });
  const file = (name: string, lines: string[]) => {
    const p = join(dir, name);
    writeFileSync(p, lines.join('\n') + '\n');
    return p;
  };

  it('a linearizable history: exit 0; acknowledged requests all committed', async () => {
    const h = file('ok.jsonl', [put(1, 'a', 0, 10, 1), put(2, 'b', 5, 20, 2), get(1, 'ab', 21, 30)]);
    const acks = file('acks', ['1 1', '2 1']);
    const log = file('replica0.log', ['1 1 1 append k', '2 2 1 append k', '']);
    const r = await cli('check-history', h, '--acks', acks, '--committed', log);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^linearizable: 3 ops on 1 keys/);
    expect(r.stdout).toContain('acknowledged: 2, lost: 0 against 1 committed log(s)');
  });

  it('a stale read: exit 1 and the small history that fails', async () => {
    const h = file('stale.jsonl', [put(1, 'a', 0, 10, 1), get(2, '', 20, 30)]);
    const r = await cli('check-history', h);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^not-linearizable/);
    expect(r.stdout).toContain('"k"');
  });

  it('an acknowledged request missing from the committed log: exit 1, named', async () => {
    const h = file('lost.jsonl', [put(1, 'a', 0, 10, 1)]);
    const r = await cli('check-history', h, '--acks', file('acks2', ['1 1', '1 2']), '--committed', file('r1.log', ['1 1 1 append k', '']));
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('lost: 1 (e.g. 1 2)');
  });

  it('a file that is not a history: exit 2, every bad line named', async () => {
    const h = file('bad.jsonl', ['{"client":1}', 'not json']);
    const r = await cli('check-history', h);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('bad.jsonl:1');
    expect(r.stderr).toContain('bad.jsonl:2');
    const missing = await cli('check-history', join(dir, 'nope.jsonl'));
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toContain('cannot read the history');
  });
});
