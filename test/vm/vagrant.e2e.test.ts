/**
 * Tier 3, opt-in (ELECTRODE_LAB_VM_TESTS=1): real VMs under software
 * emulation. The test builds (or reuses, from the box cache) the debian12
 * box, creates a network namespace of its own, starts virtlogd and libvirtd
 * INSIDE it (so libvirt's bridges, NAT and DHCP never touch the root
 * namespace), runs the electrode-lab CLI inside it too (`up`, `exec`,
 * `down`), attaches all fast paths with native XDP on virtio-net, runs a
 * short client workload against replicas using them, takes the lab down and
 * checks nothing is left. It stops only the daemons it started, by PID.
 *
 *   ELECTRODE_LAB_VM_TESTS=1 npx vitest run test/vm/vagrant.e2e.test.ts
 *   ELECTRODE_LAB_VM_SIZES=3,5,7   replica counts to try (default 3)
 *   ELECTRODE_LAB_VM_BOX=debian12-k58  the box recipe (default debian12): debian12-k58
 *                                  boots Linux 5.8.1 (../shared/kernels/vmlinuz-5.8.1-vm
 *                                  or ELECTRODE_LAB_K58_KERNEL) and every VM must run it
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boxCacheDir, boxKernel as boxKernelOf } from '../../src/images/boxes.js';
import { projectRoot } from '../../src/edges/paths.js';
import { planFromInputs } from '../../src/core/plan.js';
import { ExecaRunner, RunResult } from '../../src/edges/runner.js';

const enabled = process.env.ELECTRODE_LAB_VM_TESTS === '1';
const sizes = (process.env.ELECTRODE_LAB_VM_SIZES ?? '3').split(',').map(Number);
const recipe = process.env.ELECTRODE_LAB_VM_BOX ?? 'debian12';
const BOX = `electrode-lab/${recipe}`;
const root = projectRoot();
const cli = join(root, 'dist/src/cli.js');
const ns = `el-vmtest-${process.pid}`;
const r = new ExecaRunner();
const vagrantHome = join(boxCacheDir(), '..', 'vagrant-home');
/** Created in beforeAll, so a skipped run leaves nothing behind. */
let labHome = '';
const started: { name: string; pid: number }[] = [];
const timings: string[] = [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, stepMs));
  }
}

const inNs = (argv: string[]) => ['nsenter', `--net=/run/netns/${ns}`, '--', ...argv];
const env = (): NodeJS.ProcessEnv => ({ ...process.env, ELECTRODE_LAB_HOME: labHome, ELECTRODE_LAB_RUNS: join(labHome, 'runs'), ELECTRODE_LAB_CORE_WAIT_S: '1800', VAGRANT_HOME: vagrantHome, ELECTRODE_LAB_VM_BUILD: 'host', CI: 'true' });

/** The CLI, inside the test's namespace. */
async function el(args: string[], timeoutMs = 600_000): Promise<RunResult> {
  return r.run(inNs(['node', cli, ...args]), { env: env(), check: false, timeoutMs });
}

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const out = await fn();
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  timings.push(`${label}: ${s} s`);
  console.log(`[vm-e2e] ${label}: ${s} s`);
  return out;
}

const virsh = async (...a: string[]) => (await r.run(['virsh', '-q', '-c', 'qemu:///system', ...a], { check: false })).stdout;

describe.skipIf(!enabled)('VM lab end to end (vagrant + libvirt in a private namespace, software emulation)', () => {
  beforeAll(async () => {
    labHome = mkdtempSync(join(tmpdir(), 'el-vm-e2e-'));
    for (const f of [cli, join(root, 'native/build/replica'), join(root, 'native/build/client'), join(root, 'bpf/build/el-loader'), join(root, 'bpf/build/el_pass.bpf.o')]) {
      if (!existsSync(f)) throw new Error(`${f} missing: run \`npm run build\` first`);
    }
    for (const [d, pidFile] of [
      ['libvirtd', '/run/libvirtd.pid'],
      ['virtlogd', '/run/virtlogd.pid'],
    ] as const) {
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
      if (pid > 0 && alive(pid)) throw new Error(`another ${d} (pid ${pid}) is using /run/libvirt; stop it first: this test starts its own inside a private network namespace`);
    }
    await timed(`box ${recipe} (build or cache) + vagrant box add`, async () => {
      const b = await r.run(['node', cli, 'box', 'build', recipe], { env: env(), check: false, timeoutMs: 1_800_000 });
      expect(b.stderr + b.stdout).toContain(`box ${BOX} ready`);
    });
    await r.run(['ip', 'netns', 'add', ns]);
    await r.run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    for (const d of ['virtlogd', 'libvirtd']) {
      await r.run(inNs([d, '-d']));
      const pidFile = `/run/${d}.pid`;
      await until(`${pidFile}`, () => existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8').trim()) > 0, 20_000);
      started.push({ name: d, pid: Number(readFileSync(pidFile, 'utf8').trim()) });
    }
    await until('libvirtd to answer', async () => (await r.run(['virsh', '-c', 'qemu:///system', 'version'], { check: false })).exitCode === 0, 30_000);
  }, 1_900_000);

  afterAll(async () => {
    try {
      for (const n of sizes) await el(['--name', `vm${n}`, 'down'], 600_000);
      // the base box volume vagrant-libvirt uploaded is a cache of this test's libvirtd: remove it too
      for (const v of (await virsh('vol-list', 'default')).split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '')) {
        if (v.startsWith('electrode-lab-VAGRANTSLASH-debian12')) await virsh('vol-delete', '--pool', 'default', v);
      }
    } finally {
      for (const p of [...started].reverse()) {
        if (alive(p.pid)) process.kill(p.pid, 'SIGTERM');
        await until(`${p.name} (pid ${p.pid}) to exit`, () => !alive(p.pid), 20_000).catch(() => process.kill(p.pid, 'SIGKILL'));
      }
      await r.run(['ip', 'netns', 'del', ns], { check: false });
      if (labHome) rmSync(labHome, { recursive: true, force: true });
      console.log(`[vm-e2e] timings:\n  ${timings.join('\n  ')}`);
    }
    expect(started.filter((p) => alive(p.pid))).toEqual([]);
    expect((await r.run(['ip', 'netns', 'list'])).stdout).not.toContain(ns);
  }, 900_000);

  for (const n of sizes) {
    // one lab per size; the steps share it and run in order
    const name = `vm${n}`;
    const plan = planFromInputs([{ name, replicas: n, provider: 'vagrant', mtu: 3000, vm: { box: BOX, kernel: 'box', driver: 'qemu', memory: 768 } }]);
    const reps = plan.nodes.filter((x) => x.role === 'replica');
    const exec = (node: string, argv: string[], timeoutMs = 120_000) => el(['--name', name, 'exec', node, '--', ...argv], timeoutMs);
    const configFile = () => join(labHome, 'labs', name, 'files', 'replica.config');
    let isUp = false;
    let fastPaths = false;

    it(`${n} replicas: up ${n + 1} VMs (one at a time, software emulation)`, async () => {
      const up = await timed(`up ${n} replicas + 1 client`, () =>
        el(['--name', name, 'up', String(n), '--provider', 'vagrant', '--box', BOX, '--vm-driver', 'qemu', '--mtu', '3000', '--memory', '768'], 5_400_000),
      );
      expect(up.stderr + up.stdout, up.stderr).toContain(`lab '${name}' is up (vagrant)`);
      expect(up.exitCode).toBe(0);
      // up checked native XDP on every replica NIC with an XDP_PASS program
      for (const r0 of reps) expect(up.stderr).toContain(`✔ ${r0.name}: native XDP on`);
      isUp = true;
    }, 5_500_000);

    it(`${n} replicas: all fast paths attach with native XDP on virtio-net`, async () => {
      expect(isUp).toBe(true);
      await timed(`attach all fast paths natively on ${n} replicas`, async () => {
        // the user's command: electrode-lab attach --all, native XDP or an error (no generic fallback)
        const a = await el(['--name', name, 'attach', '--all', '--xdp-mode', 'native']);
        expect(a.exitCode, a.stderr.slice(-3000)).toBe(0);
        for (const node of reps) {
          const link = (await exec(node.name, ['ip', '-d', '-o', 'link', 'show'])).stdout.split('\n').find((l) => l.includes(node.mac)) ?? '';
          expect(link).toMatch(/ xdp /);
          expect(link).not.toMatch(/xdpgeneric/);
          const ifname = /^\d+:\s+([^:@]+)/.exec(link)?.[1] ?? '?';
          expect((await exec(node.name, ['tc', 'filter', 'show', 'dev', ifname, 'egress'])).stdout).toMatch(/bpf/);
        }
      });
      fastPaths = true;
      // status, from the user's side: every VM up on the box's kernel (no drift), the replicas with native XDP and TC egress
      const st = await el(['--name', name, 'status', '--json']);
      expect(st.exitCode, st.stderr).toBe(0);
      const status = JSON.parse(st.stdout) as { provider: string; nodes: { node: string; state: string; bpf: string[]; kernel?: string; detail?: string }[] };
      expect(status.provider).toBe('vagrant');
      expect(status.nodes.map((x) => x.node)).toEqual(plan.nodes.map((x) => x.name));
      const boxKernel = boxKernelOf(BOX, env());
      expect(boxKernel).toMatch(recipe === 'debian12-k58' ? /^5\.8\./ : /^\d+\.\d+/);
      for (const x of status.nodes) {
        expect(x.state, x.node).toBe('up');
        expect(x.kernel, x.node).toBe(boxKernel);
        expect(x.detail ?? '', x.node).not.toContain('DRIFTED');
      }
      for (const x of status.nodes.filter((y) => y.node.startsWith('replica'))) {
        expect(x.bpf.join(' '), x.node).toMatch(/xdp\(native\)/);
        expect(x.bpf.join(' '), x.node).toMatch(/tc egress/);
      }
      timings.push(`${n} replicas status: ${status.nodes.map((x) => `${x.node} ${x.state} ${x.kernel} [${x.bpf.join(', ')}]`).join('; ')}`);
    }, 600_000);

    it(`${n} replicas: client workload completes (with the fast paths when they attached)`, async () => {
      expect(isUp).toBe(true);
      const pids: Record<string, number> = {};
      const flags = fastPaths ? ['--fast-broadcast', '--fast-quorum', '--fast-reply'] : [];
      try {
        await timed(`start ${n} replicas${fastPaths ? ' with all fast paths' : ' (no fast paths)'}`, async () => {
          for (const node of reps) {
            const log = join(labHome, 'labs', name, 'logs', node.name, 'replica.log');
            const pin = fastPaths ? ['--bpf-pin-dir', node.pinDir] : [];
            const line = `mkdir -p $(dirname ${log}); setsid nohup ${root}/native/build/replica -c ${configFile()} -i ${node.index} ${[...pin, ...flags].join(' ')} >${log} 2>&1 </dev/null & echo $!`;
            const s = await exec(node.name, ['sh', '-c', line]);
            pids[node.name] = Number(s.stdout.trim());
            expect(pids[node.name]).toBeGreaterThan(0);
          }
          for (const node of reps) {
            await until(`${node.name} to bind UDP ${node.port}`, async () => (await exec(node.name, ['sh', '-c', `ss -Hlun 'sport = :${node.port}' | grep -q .`])).exitCode === 0, 120_000, 500);
          }
        });
        const res = await timed('client: 300 requests, 1 thread', () => exec('client0', [`${root}/native/build/client`, '-c', configFile(), '-n', '300', '-t', '1', '--timeout-ms', '3000'], 600_000));
        const last = res.stdout.trim().split('\n').pop() ?? '';
        const json = JSON.parse(last) as { completed: number; errors: number; throughput_ops: number; latency_us: { p50: number; p99: number } };
        const line = `${n} replicas${fastPaths ? ' (fast paths)' : ' (no fast paths)'}: ${json.completed} completed, ${json.throughput_ops.toFixed(0)} ops/s, p50 ${json.latency_us.p50} us, p99 ${json.latency_us.p99} us`;
        console.log(`[vm-e2e] ${line}`);
        timings.push(line);
        expect(json.completed).toBe(300);
        expect(res.exitCode).toBe(0);
        if (fastPaths) {
          const stats = await el(['--name', name, 'stats', '--json']);
          expect(stats.exitCode, stats.stderr).toBe(0);
          const perNode = (JSON.parse(stats.stdout) as { nodes: { node: string }[] }).nodes;
          expect(perNode.map((x) => x.node)).toEqual(reps.map((x) => x.name));
          timings.push(`${n} replicas fast-path stats: ${JSON.stringify(perNode)}`);
        }
      } finally {
        for (const [node, pid] of Object.entries(pids)) await exec(node, ['kill', '-TERM', String(pid)]);
      }
    }, 1_200_000);

    it(`${n} replicas: a short bench runs on the VMs (baseline, and all fast paths when they attached)`, async () => {
      expect(isUp).toBe(true);
      // the workload step left the fast paths attached by hand: the bench attaches per arm itself
      const d = await el(['--name', name, 'detach']);
      expect(d.exitCode, d.stderr).toBe(0);
      const arms = fastPaths ? 'baseline,all' : 'baseline';
      const b = await timed(`bench ${n} replicas (${arms}, 1 thread, 200 requests)`, () =>
        el(['--name', name, 'bench', '--replicas', String(n), '--arms', arms, '--threads', '1', '--repeat', '1', '--requests', '200', '--warmup', '0', '--json'], 3_600_000),
      );
      expect(b.exitCode, b.stderr.slice(-3000)).toBe(0);
      const sum = JSON.parse(b.stdout.trim().split('\n').pop() ?? '{}') as { trials: number; failed: number; crashed: number; rows: { arm: string; throughput?: { median: number } }[]; dir: string };
      expect(sum.trials).toBe(fastPaths ? 2 : 1);
      expect(sum.failed).toBe(0);
      expect(sum.crashed).toBe(0);
      const line = `${n} replicas bench rows: ${JSON.stringify(sum.rows)}`;
      console.log(`[vm-e2e] ${line}`);
      timings.push(line);
      // the run folder has the guests' replica logs, pulled out of the VMs
      expect(existsSync(join(sum.dir, 'nodes', 'replica0'))).toBe(true);
    }, 3_700_000);

    it(`${n} replicas: a replica that crashes inside a VM leaves a core and a gdb backtrace in the run folder`, async () => {
      expect(isUp).toBe(true);
      const b = await timed(`bench ${n} replicas with replica1 crashing on purpose`, () =>
        el(['--name', name, 'bench', '--replicas', String(n), '--arms', 'baseline', '--threads', '1', '--repeat', '1', '--requests', '300', '--warmup', '0', '--replica-args', '1:--crash-after 50', '--json'], 3_600_000),
      );
      expect(b.exitCode, b.stderr.slice(-3000)).toBe(0);
      const sum = JSON.parse(b.stdout.trim().split('\n').pop() ?? '{}') as { crashed: number; dir: string; crashes: { node: string; signal: string | null; topFrames: string[]; dir: string; core?: string }[] };
      expect(sum.crashed).toBe(1);
      const c = sum.crashes.find((x) => x.node === 'replica1');
      expect(c, JSON.stringify(sum.crashes)).toBeDefined();
      expect(c!.signal).toBe('SIGSEGV');
      expect(c!.topFrames).toContain('crash_on_purpose');
      expect(c!.core).toBe('core');
      const dir = join(sum.dir, c!.dir);
      for (const f of ['core', 'backtrace.txt', 'log.tail', 'bpf.json', 'crash.json']) expect(existsSync(join(dir, f)), f).toBe(true);
      expect(readFileSync(join(dir, 'log.tail'), 'utf8')).toContain('crashing on purpose');
      const line = `${n} replicas crash in a VM: ${c!.signal}, top frames ${c!.topFrames.slice(0, 4).join(' <- ')}`;
      console.log(`[vm-e2e] ${line}`);
      timings.push(line);
    }, 3_700_000);

    it(`${n} replicas: down leaves no domain, network or volume`, async () => {
      const down = await timed(`down ${n}`, () => el(['--name', name, 'down'], 900_000));
      expect(down.exitCode, down.stderr).toBe(0);
      const prefix = `el-${name}-`;
      expect((await virsh('list', '--all', '--name')).split('\n').filter((d) => d.startsWith(prefix))).toEqual([]);
      expect((await virsh('net-list', '--all', '--name')).split('\n').map((s) => s.trim())).not.toContain(plan.vm.libvirtNetwork);
      expect((await virsh('vol-list', 'default')).split('\n').filter((l) => l.trim().startsWith(prefix))).toEqual([]);
    }, 900_000);
  }
});
