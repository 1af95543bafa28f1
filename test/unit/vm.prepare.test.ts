/**
 * What `up` decides for a VM lab before any VM starts: which base box (used,
 * added from the cache, built, or the offline 5.8 stand-in) and whether it
 * starts the libvirt daemons; what `down` of the last VM lab stops.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { boxAdded, boxRecipe, ownKernelImage, recordedKernel } from '../../src/images/boxes.js';
import { LabPaths } from '../../src/edges/paths.js';
import { planFromInputs } from '../../src/core/plan.js';
import { procStartTime, processAlive, until } from '../../src/edges/proc.js';
import { QuietProgress } from '../../src/edges/progress.js';
import { ExecaRunner } from '../../src/edges/runner.js';
import { newState, saveLabFiles, saveState } from '../../src/edges/state.js';
import { BoxFacts, BoxState, boxDecision, needsInternetAnswer, OFFLINE_K58_BOX, planOnBox } from '../../src/providers/vagrantBox.js';
import { daemonsRecordFile, daemonsToStop, libvirtdDecision, loadStartedDaemons, saveStartedDaemons, StartedDaemon, stopDaemonsIfLast } from '../../src/providers/libvirtd.js';

const tmp = mkdtempSync(join(tmpdir(), 'el-vmprep-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const UBUNTU = 'electrode-lab/ubuntu2004-k58';
const state = (box: string, o: Partial<BoxState> = {}): BoxState => ({ box, recipe: boxRecipe(box), added: false, ...o });
const facts = (o: Partial<BoxFacts> = {}): BoxFacts => ({ want: state(UBUNTU), isDefault: true, fallback: state(OFFLINE_K58_BOX), ...o });
const image = { path: '/k/vmlinuz-5.8.1-vm', source: 'the 5.8.1 guest image next to the checkout' };
const release = () => '5.8.1';

describe('the box up brings', () => {
  it('uses a box vagrant has, with the kernel it records, and asks nothing of the internet', () => {
    const f = facts({ want: state(UBUNTU, { added: true, installed: { name: UBUNTU, kernel: '5.8.0-050800-generic' } }) });
    expect(needsInternetAnswer(f)).toBe(false);
    expect(boxDecision(f)).toMatchObject({ kind: 'go', box: UBUNTU, step: 'none', kernel: '5.8.0-050800-generic', fallback: false });
  });

  it('adds a cached build without building it again', () => {
    const f = facts({ want: state(UBUNTU, { cached: { name: UBUNTU, kernel: '5.8.0-050800-generic' } }) });
    expect(needsInternetAnswer(f)).toBe(false);
    expect(boxDecision(f)).toMatchObject({ kind: 'go', box: UBUNTU, step: 'add', fallback: false, why: expect.stringMatching(/box cache/) });
  });

  it('builds the default box when it is missing and the internet answers', () => {
    const f = facts({ internet: true, k58Image: image });
    expect(needsInternetAnswer(f)).toBe(true);
    expect(boxDecision(f, release)).toMatchObject({ kind: 'go', box: UBUNTU, step: 'build', kernel: '5.8.0-050800-generic', fallback: false, why: expect.stringMatching(/internet answers/) });
  });

  it('offline, falls back to debian12-k58: built from the 5.8 image it has, added when cached, used when added', () => {
    expect(boxDecision(facts({ internet: false, k58Image: image }), release)).toMatchObject({
      kind: 'go', box: OFFLINE_K58_BOX, step: 'build', kernel: '5.8.1', image, fallback: true,
      why: expect.stringMatching(/cannot reach; building electrode-lab\/debian12-k58 offline instead, booting \/k\/vmlinuz-5\.8\.1-vm/),
    });
    const cached = facts({ internet: false, fallback: state(OFFLINE_K58_BOX, { cached: { name: OFFLINE_K58_BOX, kernel: '5.8.1' } }) });
    expect(boxDecision(cached)).toMatchObject({ kind: 'go', box: OFFLINE_K58_BOX, step: 'add', kernel: '5.8.1', fallback: true });
    const added = facts({ internet: false, k58Image: image, fallback: state(OFFLINE_K58_BOX, { added: true, installed: { name: OFFLINE_K58_BOX, kernel: '5.8.1' } }) });
    expect(boxDecision(added)).toMatchObject({ kind: 'go', box: OFFLINE_K58_BOX, step: 'none', kernel: '5.8.1', fallback: true });
  });

  it('offline with no 5.8 image: stops, naming both ways out', () => {
    const d = boxDecision(facts({ internet: false }));
    expect(d.kind).toBe('stop');
    if (d.kind !== 'stop') return;
    expect(d.diagnostic.code).toBe('VM_NO_BOX');
    expect(d.diagnostic.message).toMatch(/no Linux 5\.8 image/);
    expect(d.diagnostic.hint).toMatch(/connect this machine to the internet/);
    expect(d.diagnostic.hint).toMatch(/electrode-lab kernel build --source linux-5\.8\.x\.tar\.xz/);
    expect(d.diagnostic.hint).toMatch(/ELECTRODE_LAB_K58_KERNEL/);
  });

  it('a box the user chose is never swapped: offline, it stops and names --box for the 5.8 way', () => {
    const d = boxDecision(facts({ isDefault: false, internet: false, k58Image: image }), release);
    expect(d).toMatchObject({ kind: 'stop', diagnostic: { code: 'VM_NO_BOX', hint: expect.stringMatching(/--box electrode-lab\/debian12-k58/) } });
  });

  it('debian12-k58 asked for by name: built from the image, or a stop naming kernel build', () => {
    const want = state(OFFLINE_K58_BOX);
    expect(needsInternetAnswer({ want, isDefault: false, fallback: want })).toBe(false);
    expect(boxDecision({ want, isDefault: false, fallback: want, k58Image: image }, release)).toMatchObject({ kind: 'go', step: 'build', kernel: '5.8.1', image, fallback: false });
    expect(boxDecision({ want, isDefault: false, fallback: want })).toMatchObject({ kind: 'stop', diagnostic: { hint: expect.stringMatching(/kernel build/) } });
  });

  it("someone else's box: vagrant fetches it online; offline and not added it stops", () => {
    const want: BoxState = { box: 'generic/debian12', added: false };
    expect(needsInternetAnswer({ want, isDefault: false, fallback: state(OFFLINE_K58_BOX) })).toBe(true);
    expect(boxDecision({ want, isDefault: false, fallback: state(OFFLINE_K58_BOX), internet: true })).toMatchObject({ kind: 'go', step: 'none', box: 'generic/debian12' });
    expect(boxDecision({ want, isDefault: false, fallback: state(OFFLINE_K58_BOX), internet: false })).toMatchObject({ kind: 'stop' });
  });

  it('the plan on the stand-in box: its own kernel, host-built binaries unless the lab said otherwise; the rest unchanged', () => {
    const plan = planFromInputs([{ name: 'p', replicas: 3, provider: 'vagrant' }]);
    expect(plan.vm.box).toBe(UBUNTU);
    const d = boxDecision(facts({ internet: false, k58Image: image }), release);
    if (d.kind !== 'go') throw new Error('expected go');
    const next = planOnBox(plan, d);
    expect(next.vm).toEqual({ ...plan.vm, box: OFFLINE_K58_BOX, kernel: 'box' });
    expect(next.spec.vm).toMatchObject({ box: OFFLINE_K58_BOX, kernel: 'box', build: 'host' });
    expect(next.nodes).toEqual(plan.nodes);
    const guest = planFromInputs([{ name: 'p', replicas: 3, provider: 'vagrant', vm: { build: 'guest' } }]);
    expect(planOnBox(guest, d).spec.vm.build).toBe('guest');
    // the lab's own box: the plan as it was
    const own = boxDecision(facts({ internet: true }));
    if (own.kind !== 'go') throw new Error('expected go');
    expect(planOnBox(plan, own)).toBe(plan);
  });
});

describe('box facts read from files', () => {
  it('a box counts as added when vagrant left its libvirt metadata', () => {
    const env = { VAGRANT_HOME: join(tmp, 'vh') };
    expect(boxAdded(OFFLINE_K58_BOX, env)).toBe(false);
    const dir = join(tmp, 'vh', 'boxes', 'electrode-lab-VAGRANTSLASH-debian12-k58', '0', 'libvirt');
    mkdirSync(dir, { recursive: true });
    expect(boxAdded(OFFLINE_K58_BOX, env)).toBe(false);
    writeFileSync(join(dir, 'metadata.json'), '{"provider":"libvirt"}');
    expect(boxAdded(OFFLINE_K58_BOX, env)).toBe(true);
  });

  it('the 5.8 image: the env var first, then the one `kernel build` recorded (while it exists), then the shared one', () => {
    const kernels = join(tmp, 'kernels');
    const env = { ELECTRODE_LAB_KERNELS: kernels };
    const checkout = join(tmp, 'co', 'checkout');
    expect(ownKernelImage(env, checkout)).toBeUndefined();
    mkdirSync(kernels, { recursive: true });
    const img = join(kernels, 'vmlinuz-5.8.1-vm');
    writeFileSync(join(kernels, 'kernel.json'), JSON.stringify({ release: '5.8.1', image: img, config: `${img}.config`, source: 'linux-5.8.1.tar.xz', built: 'now', btf: false }));
    expect(recordedKernel(env)).toBeUndefined();
    writeFileSync(img, 'x');
    expect(ownKernelImage(env, checkout)).toEqual({ path: img, source: 'built by `electrode-lab kernel build` from linux-5.8.1.tar.xz' });
    expect(ownKernelImage({ ...env, ELECTRODE_LAB_K58_KERNEL: '/given' }, checkout)?.path).toBe('/given');
  });
});

describe('libvirtd', () => {
  const uri = 'qemu:///system';
  it('the record of started daemons is written in a labs home that does not exist yet (the first up on a machine)', () => {
    const home = join(mkdtempSync(join(tmpdir(), 'el-daemons-')), 'state', 'electrode-lab');
    const d: StartedDaemon = { name: 'virtlogd', pid: 4242, startTime: '1', lab: 'lab', at: 'now' };
    saveStartedDaemons(home, [d]);
    expect(loadStartedDaemons(home)).toEqual([d]);
    saveStartedDaemons(home, []);
    expect(loadStartedDaemons(home)).toEqual([]);
    rmSync(join(home, '..', '..'), { recursive: true, force: true });
  });
  it('answering: nothing to do', () => {
    expect(libvirtdDecision({ answers: true, systemd: false, running: {} }, uri)).toEqual({ kind: 'ready' });
  });
  it('no systemd: start both, or only libvirtd when virtlogd runs', () => {
    expect(libvirtdDecision({ answers: false, systemd: false, running: {} }, uri)).toMatchObject({ kind: 'start', daemons: ['virtlogd', 'libvirtd'] });
    expect(libvirtdDecision({ answers: false, systemd: false, running: { virtlogd: 42 } }, uri)).toMatchObject({ kind: 'start', daemons: ['libvirtd'], why: expect.stringMatching(/virtlogd runs, pid 42/) });
  });
  it('systemd: one command to run, nothing started', () => {
    expect(libvirtdDecision({ answers: false, systemd: true, running: {} }, uri)).toMatchObject({ kind: 'stop', diagnostic: { code: 'HOST_LIBVIRTD_DOWN', hint: expect.stringMatching(/^run `systemctl start libvirtd`/) } });
  });
  it('a libvirtd that runs but does not answer is not started twice', () => {
    expect(libvirtdDecision({ answers: false, systemd: false, running: { libvirtd: 7 } }, uri)).toMatchObject({ kind: 'stop', diagnostic: { code: 'HOST_LIBVIRTD_STUCK', hint: expect.stringMatching(/kill 7/) } });
  });
  it('down of the last VM lab stops libvirtd then virtlogd; with another VM lab up, nothing', () => {
    const s = (name: 'virtlogd' | 'libvirtd', pid: number): StartedDaemon => ({ name, pid, startTime: '1', lab: 'a', at: 'now' });
    expect(daemonsToStop([s('virtlogd', 1), s('libvirtd', 2)], []).stop.map((x) => x.name)).toEqual(['libvirtd', 'virtlogd']);
    expect(daemonsToStop([s('virtlogd', 1), s('libvirtd', 2)], ['b'])).toEqual({ stop: [], keptFor: ['b'] });
  });

  it('stopDaemonsIfLast signals a recorded process only when no other VM lab is up, and never a recycled PID', async () => {
    const home = join(tmp, 'home');
    mkdirSync(home, { recursive: true });
    // a real process standing in for a daemon (nothing here may start libvirtd)
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    const pid = child.pid!;
    try {
      await until(() => procStartTime(pid) !== undefined, 5000);
      const rec = (p: number, startTime: string): StartedDaemon => ({ name: 'libvirtd', pid: p, startTime, lab: 'a', at: 'now' });
      writeFileSync(daemonsRecordFile(home), JSON.stringify({ started: [rec(pid, procStartTime(pid)!)] }));
      // another VM lab is up: kept
      const other = new LabPaths(home, 'b');
      const bplan = planFromInputs([{ name: 'b', replicas: 3, provider: 'vagrant' }]);
      saveLabFiles(other, bplan);
      saveState(other, { ...newState(bplan), phase: 'up' });
      const lines: string[] = [];
      const progress = { ...new QuietProgress(), info: (l: string) => lines.push(l), warn: (l: string) => lines.push(l) };
      const o = { runner: new ExecaRunner(), progress, home, lab: 'a', vmLab: (p: string) => p === 'vagrant' };
      await stopDaemonsIfLast(o);
      expect(processAlive(pid)).toBe(true);
      expect(lines.join('\n')).toMatch(/left running for lab b/);
      // lab b goes: now a's down is the last, the process is stopped and the record removed
      rmSync(other.root, { recursive: true, force: true });
      await stopDaemonsIfLast(o);
      expect(await until(() => !processAlive(pid), 5000)).toBe(true);
      expect(loadStartedDaemons(home)).toEqual([]);
      expect(lines.join('\n')).toMatch(new RegExp(`stopped libvirtd \\(pid ${pid}\\)`));
      // a record whose start time is not the live process's: not signalled
      const child2 = spawn('sleep', ['300'], { stdio: 'ignore' });
      await until(() => procStartTime(child2.pid!) !== undefined, 5000);
      writeFileSync(daemonsRecordFile(home), JSON.stringify({ started: [rec(child2.pid!, 'not-its-start-time')] }));
      await stopDaemonsIfLast(o);
      expect(processAlive(child2.pid!)).toBe(true);
      child2.kill('SIGKILL');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('a 5.8 image that is not one', () => {
  it('stops before anything is created, naming the image and where it came from', () => {
    const bad = { path: '/nonexistent', source: 'ELECTRODE_LAB_K58_KERNEL' };
    const d = boxDecision(facts({ internet: false, k58Image: bad }), () => undefined);
    expect(d).toMatchObject({ kind: 'stop', diagnostic: { code: 'BOX_BAD_KERNEL_IMAGE', subject: '/nonexistent', message: expect.stringMatching(/ELECTRODE_LAB_K58_KERNEL/) } });
  });
});
