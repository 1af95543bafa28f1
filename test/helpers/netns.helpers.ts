/** Shared pieces of the real-namespace tests: the built CLI, a temp lab home, waits on conditions. */
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabPaths } from '../../src/edges/paths.js';
import { Plan } from '../../src/core/plan.js';
import { QuietProgress } from '../../src/edges/progress.js';
import { ProviderContext } from '../../src/providers/provider.js';
import { ExecaRunner } from '../../src/edges/runner.js';
import { loadPlan } from '../../src/edges/state.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const IS_ROOT = process.getuid?.() === 0;
export const SKIP_REASON = 'needs root (real network namespaces); run the tests as root, as CI does';

export function tempHome(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function cliIn(home: string) {
  return (...args: string[]) => execa('node', [CLI, ...args], { reject: false, env: { ELECTRODE_LAB_HOME: home, CI: 'true' } });
}

export function providerCtx(home: string, lab: string): ProviderContext {
  return { runner: new ExecaRunner(), paths: new LabPaths(home, lab), progress: new QuietProgress() };
}

export function savedPlan(home: string, lab: string): Plan {
  const p = loadPlan(new LabPaths(home, lab));
  if (!p) throw new Error(`lab ${lab} has no saved plan in ${home}`);
  return p;
}

/** Polls a condition (no fixed sleeps): resolves when it holds, throws naming `what` at the deadline. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function fileHas(file: string, text: string): boolean {
  return existsSync(file) && readFileSync(file, 'utf8').includes(text);
}

/** Everything a lab could leave on this host, for "down leaves nothing" assertions. */
export async function leftovers(lab: string, macPrefix: string): Promise<string[]> {
  const out: string[] = [];
  const ns = (await execa('ip', ['netns', 'list'])).stdout;
  for (const l of ns.split('\n')) if (l.startsWith(`el-${lab}-`)) out.push(`namespace ${l}`);
  const links = (await execa('ip', ['-o', 'link', 'show'])).stdout;
  for (const l of links.split('\n')) {
    if (/\bp-(replica|client)\d+\b/.test(l) || l.includes(macPrefix)) out.push(`root-namespace link ${l.slice(0, 80)}`);
  }
  if (existsSync(`/sys/fs/bpf/electrode-lab/${lab}`)) out.push(`pin folder /sys/fs/bpf/electrode-lab/${lab}`);
  return out;
}

/** UDP echo server: binds the node's address and port, says `ready`, answers `<node> <payload>`. */
export const ECHO_SERVER = `
import socket, sys
ip, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, port))
print('ready', flush=True)
while True:
    d, a = s.recvfrom(2048)
    s.sendto(name.encode() + b' ' + d, a)
`;

/** Sends to every target from the node's own address; prints {target: reply} as JSON. */
export const ECHO_CLIENT = `
import json, socket, sys
src, targets = sys.argv[1], json.loads(sys.argv[2])
out = {}
for name, ip, port in targets:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.settimeout(0.5)
    for attempt in range(10):
        s.sendto(('from ' + src).encode(), (ip, port))
        try:
            d, a = s.recvfrom(2048)
            out[name] = d.decode() + ' via ' + a[0] + ':' + str(a[1])
            break
        except socket.timeout:
            continue
    s.close()
print(json.dumps(out))
`;
