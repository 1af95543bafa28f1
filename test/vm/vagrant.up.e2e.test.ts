/**
 * Tier 3, opt-in (ELECTRODE_LAB_VM_TESTS=1): `electrode-lab up 3` on a
 * machine with no box added to vagrant and no libvirtd running, with no
 * other flag than the README's VM quick start shows. `up` must choose the
 * box itself (the default ubuntu2004-k58 needs the internet, which the
 * test's private network namespace does not have, so: debian12-k58 on
 * Linux 5.8.1), say so before any VM starts, start virtlogd and libvirtd
 * itself (no systemd here), and end with 3 replicas on 5.8.1; `down` must
 * then leave nothing, the daemons `up` started included.
 *
 *   ELECTRODE_LAB_VM_TESTS=1 npx vitest run test/vm/vagrant.up.e2e.test.ts
 *
 * The 5.8 box is "a 5.8 image this machine has cached": before the run, the
 * test builds debian12-k58 into the box cache OUTSIDE the namespace (Debian's
 * mirror is not reachable from inside it), adding it to a throwaway
 * VAGRANT_HOME; `up` runs with a fresh, empty one.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/edges/paths.js';
import { processAlive, until } from '../../src/edges/proc.js';
import { ExecaRunner, RunResult } from '../../src/edges/runner.js';
import { daemonsRecordFile, loadStartedDaemons, StartedDaemon } from '../../src/providers/libvirtd.js';

const enabled = process.env.ELECTRODE_LAB_VM_TESTS === '1';
const root = projectRoot();
const cli = join(root, 'dist/src/cli.js');
const ns = `el-vmup-${process.pid}`;
const r = new ExecaRunner();
const BOX = 'electrode-lab/debian12-k58';
let labHome = '';
let vagrantHome = '';
let started: StartedDaemon[] = [];
let isUp = false;
const ls = (d: string) => (existsSync(d) ? readdirSync(d).sort() : []);
/** libvirt's persistent configuration and images: what `down` must leave as it found it (read from files: the daemon is gone by then). */
const libvirtFiles = () => ({ domains: ls('/etc/libvirt/qemu').filter((f) => f.endsWith('.xml')), networks: ls('/etc/libvirt/qemu/networks').filter((f) => f.endsWith('.xml')), images: ls('/var/lib/libvirt/images') });
let before = libvirtFiles();

const inNs = (argv: string[]) => ['nsenter', `--net=/run/netns/${ns}`, '--', ...argv];
const env = (): NodeJS.ProcessEnv => ({ ...process.env, ELECTRODE_LAB_HOME: labHome, ELECTRODE_LAB_RUNS: join(labHome, 'runs'), VAGRANT_HOME: vagrantHome, CI: 'true' });
async function el(args: string[], timeoutMs = 600_000): Promise<RunResult> {
  const t0 = performance.now();
  const res = await r.run(inNs(['node', cli, ...args]), { env: env(), check: false, timeoutMs });
  console.log(`[vm-up-e2e] ${args.join(' ')}: exit ${res.exitCode}, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return res;
}

describe.skipIf(!enabled)('`up 3` from no box and no libvirtd, then `down` leaves nothing (software emulation)', () => {
  beforeAll(async () => {
    for (const f of [cli, join(root, 'native/build/replica'), join(root, 'bpf/build/el-loader'), join(root, 'bpf/build/el_pass.bpf.o')]) {
      if (!existsSync(f)) throw new Error(`${f} missing: run \`npm run build\` first`);
    }
    for (const d of ['libvirtd', 'virtlogd']) {
      const pidFile = `/run/${d}.pid`;
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
      if (pid > 0 && processAlive(pid)) throw new Error(`${d} (pid ${pid}) is running: this test needs a machine where it is not; stop it first`);
    }
    labHome = mkdtempSync(join(tmpdir(), 'el-vmup-e2e-'));
    vagrantHome = mkdtempSync(join(tmpdir(), 'el-vmup-vh-'));
    const scratchHome = mkdtempSync(join(tmpdir(), 'el-vmup-vh0-'));
    try {
      const b = await r.run(['node', cli, 'box', 'build', 'debian12-k58'], { env: { ...env(), VAGRANT_HOME: scratchHome }, check: false, timeoutMs: 1_800_000 });
      expect(b.stderr + b.stdout, b.stderr.slice(-2000)).toContain(`box ${BOX} ready: kernel 5.8.1`);
    } finally {
      rmSync(scratchHome, { recursive: true, force: true });
    }
    await r.run(['ip', 'netns', 'add', ns]);
    await r.run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    before = libvirtFiles();
  }, 1_900_000);

  afterAll(async () => {
    try {
      if (isUp) await el(['down'], 900_000);
    } finally {
      // whatever a failed step left: the daemons our `up` started, by the PIDs it recorded
      for (const s of [...started, ...(labHome ? loadStartedDaemons(labHome) : [])].reverse()) {
        if (processAlive(s.pid)) process.kill(s.pid, 'SIGTERM');
        if (!(await until(() => !processAlive(s.pid), 20_000, 100)) && processAlive(s.pid)) process.kill(s.pid, 'SIGKILL');
      }
      // the base box's image libvirt keeps as a cache of the box (not lab state): this test's to remove
      for (const f of ls('/var/lib/libvirt/images').filter((x) => x.startsWith('electrode-lab-VAGRANTSLASH-debian12-k58') && !before.images.includes(x))) rmSync(join('/var/lib/libvirt/images', f), { force: true });
      await r.run(['ip', 'netns', 'del', ns], { check: false });
      for (const d of [labHome, vagrantHome]) if (d) rmSync(d, { recursive: true, force: true });
    }
  }, 1_000_000);

  it('up 3: says which box, which kernel and why before any VM starts, starts libvirtd, ends with the lab up', async () => {
    const up = await el(['up', '3'], 3_600_000);
    const out = up.stderr + up.stdout;
    expect(up.exitCode, out.slice(-4000)).toBe(0);
    isUp = true;
    expect(out).toContain('provider: vagrant (vagrant and vagrant-libvirt are installed');
    expect(out).toContain(`box: ${BOX}, kernel 5.8.1`);
    expect(out).toMatch(/why: electrode-lab\/ubuntu2004-k58 is built from the internet, which this machine cannot reach; using electrode-lab\/debian12-k58 instead \(built before: adding it from the box cache\)/);
    expect(out).toMatch(/libvirtd is not running and this host has no systemd: starting virtlogd and libvirtd/);
    // the choice comes before the first VM
    expect(out.indexOf(`box: ${BOX}`)).toBeLessThan(out.indexOf('replica0 (1/4): vagrant up'));
    expect(out).toContain("lab 'lab' is up (vagrant)");
    started = loadStartedDaemons(labHome);
    expect(started.map((s) => s.name)).toEqual(['virtlogd', 'libvirtd']);
    for (const s of started) expect(processAlive(s.pid), s.name).toBe(true);
  }, 3_700_000);

  it('status: 3 replicas, every VM on 5.8.1', async () => {
    expect(isUp).toBe(true);
    const st = await el(['status', '--json']);
    expect(st.exitCode, st.stderr).toBe(0);
    const status = JSON.parse(st.stdout) as { nodes: { node: string; state: string; kernel?: string; detail?: string }[] };
    expect(status.nodes.filter((n) => n.node.startsWith('replica')).map((n) => n.node)).toEqual(['replica0', 'replica1', 'replica2']);
    for (const n of status.nodes) {
      expect(n.state, n.node).toBe('up');
      expect(n.kernel, n.node).toBe('5.8.1');
      expect(n.detail ?? '', n.node).not.toContain('DRIFTED');
    }
  }, 600_000);

  it('down: no domain, network or lab volume left, and the daemons up started are stopped', async () => {
    expect(isUp).toBe(true);
    const down = await el(['down'], 900_000);
    expect(down.exitCode, down.stderr.slice(-3000)).toBe(0);
    isUp = false;
    const libvirtd = started.find((s) => s.name === 'libvirtd')!;
    const virtlogd = started.find((s) => s.name === 'virtlogd')!;
    expect(down.stderr).toContain(`stopped libvirtd (pid ${libvirtd.pid}) and virtlogd (pid ${virtlogd.pid}), which \`up\` started`);
    for (const s of started) expect(processAlive(s.pid), s.name).toBe(false);
    expect(existsSync(daemonsRecordFile(labHome))).toBe(false);
    const after = libvirtFiles();
    expect(after.domains).toEqual(before.domains);
    expect(after.networks).toEqual(before.networks);
    // the lab's own volumes are gone; the base box's image is libvirt's cache of the box
    expect(after.images.filter((f) => !before.images.includes(f) && !f.startsWith('electrode-lab-VAGRANTSLASH-debian12-k58'))).toEqual([]);
  }, 1_000_000);
});
