/**
 * The Vagrant/libvirt provider: one VM per plan node, rendered into a
 * Vagrantfile (src/vagrantfile.ts) in the lab's vagrant folder, brought up
 * one VM at a time (`vagrant up --no-parallel`), then provisioned over ssh2:
 * kernel pin, electrode-lab binaries, lab files, bpffs, and a native-XDP
 * check on the lab NIC, which is found by the plan's MAC.
 *
 * Guest layout mirrors the host: binaries, the replica config, the peer
 * table and the process logs sit at the SAME absolute paths inside every VM
 * as on the host (projectRoot()/native/build/replica, the lab's files/...),
 * so a command line built for the netns provider runs unchanged in a VM.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Diagnostic, DiagnosticsError, LabError } from '../diagnostics.js';
import { BOX_RECIPES, boxKernel as boxKernelOf } from '../boxes.js';
import { buildAndAddBox } from '../boxBuild.js';
import { bzImageRelease } from '../kernelcheck.js';
import { boxDecision, boxFacts, internetAnswers, planOnBox } from './vagrantBox.js';
import { libvirtdDecision, libvirtdFacts, startDaemons, StartedDaemon, stopDaemonsIfLast } from './libvirtd.js';
import { defaultLockFile, kernelInstallScript, kernelMirror, kernelPin, resolveChecksums } from '../kernel.js';
import { LabPaths, projectRoot } from '../paths.js';
import { bpfObject, hostArtifacts, loaderPath } from '../build.js';
import { Plan, PlanNode, replicas } from '../plan.js';
import { missingTools, rootDiagnostic, Tool } from '../probe.js';
import { RunOptions, RunResult, shellQuote } from '../runner.js';
import { parseSshConfig, SshSession, SshTarget, sudoCommand } from '../ssh.js';
import { loadProcessRecords, loadResources, loadState, removeProcessRecord, saveProcessRecord, saveResources } from '../state.js';
import { domainPrefix, renderVagrantfile } from '../vagrantfile.js';
import { attachedBpfOn, nodeStatus } from './status.js';
import { collectRemote, coresPatternScript, remoteAlive, remoteCopyOut, remoteFindCore, remoteSignal, remoteSpawn, remoteStop, remoteUdpBound } from './remote.js';
import { FoundCore, KernelDrift, NodeFaults, NodeStatus, ProcessRecord, Provider, ProviderContext, netemArgs } from './provider.js';
import { gdbArgv, loaderArgv } from '../argv.js';
import { xdpMode } from '../xdp.js';
import { until } from '../proc.js';

export const VAGRANT_TOOLS: Tool[] = [
  { cmd: 'vagrant', pkg: 'vagrant', why: 'VM lifecycle' },
  { cmd: 'virsh', pkg: 'libvirt-clients', why: 'leftover domains/networks on down' },
  { cmd: 'libvirtd', pkg: 'libvirt-daemon-system', why: 'the libvirt daemon' },
  { cmd: 'qemu-system-x86_64', pkg: 'qemu-system-x86', why: 'the VMs' },
  { cmd: 'tar', pkg: 'tar', why: 'copying sources into VMs' },
];

export const LIBVIRT_URI = 'qemu:///system';
export { GUEST_CORES_DIR, GUEST_CORE_COPY_MAX } from './remote.js';

/** How electrode-lab binaries get into the VMs. */
export type BuildMode = 'guest' | 'host';

export function buildModeFrom(env: NodeJS.ProcessEnv): BuildMode {
  const v = env.ELECTRODE_LAB_VM_BUILD ?? 'guest';
  if (v !== 'guest' && v !== 'host') throw new LabError(`ELECTRODE_LAB_VM_BUILD=${v}: use guest (build in each VM) or host (copy host-built binaries; same-distro guests); \`up --build guest|host\` does the same per lab`, 'BAD_BUILD_MODE');
  return v;
}

export { hostArtifacts };

/** A minimal XDP_PASS object for the NIC check. */
export function passProgram(root = projectRoot()): string {
  const built = bpfObject('el_pass.bpf.o', root);
  if (existsSync(built)) return built;
  throw new LabError(`${built} missing; run \`make -C bpf\` (or \`npm run build\`)`, 'HOST_BUILD_MISSING');
}

/** A shell snippet printing the name of the interface with this MAC (in a guest). */
export function labNicScript(mac: string): string {
  return `ip -o link | awk -v m=${shellQuote([mac.toLowerCase()])} 'tolower($0) ~ m { sub(/:$/, "", $2); sub(/@.*/, "", $2); print $2; exit }'`;
}

/** `ip -o link` lines -> the interface whose MAC is `mac` (case-insensitive). */
export function ifnameForMac(ipOLink: string, mac: string): string | undefined {
  const want = mac.toLowerCase();
  for (const line of ipOLink.split('\n')) {
    // "3: eth1: <BROADCAST,...> mtu 3000 ... link/ether 02:4c:..:.. brd ff:ff:ff:ff:ff:ff"
    const m = /^\d+:\s+([^:@\s]+)[@:].*\blink\/ether\s+([0-9a-f:]{17})/i.exec(line.trim());
    if (m && m[2]!.toLowerCase() === want) return m[1];
  }
  return undefined;
}

/** `ethtool -l IF` -> {max, current} combined channels. */
export function parseChannels(text: string): { max: number; current: number } | undefined {
  const pre = /Pre-set maximums:[\s\S]*?Combined:\s*(\d+)/.exec(text);
  const cur = /Current hardware settings:[\s\S]*?Combined:\s*(\d+)/.exec(text);
  if (!pre || !cur) return undefined;
  return { max: Number(pre[1]), current: Number(cur[1]) };
}

/**
 * Queue pairs to keep active so native XDP can attach: virtio_net needs
 * active pairs + CPUs <= max pairs. undefined = nothing to change.
 */
export function channelsForXdp(ch: { max: number; current: number }, cpus: number): number | undefined {
  if (ch.current + cpus <= ch.max) return undefined;
  const k = ch.max - cpus;
  return k >= 1 ? k : undefined;
}

/**
 * A failed native-XDP attach on virtio-net, in the kernel's words (loader
 * stderr or dmesg), translated into what to change (REFERENCE.md 2).
 */
export function xdpAttachFix(message: string, ctx: { ifname: string; cpus: number; queues: number; mtu: number }): string {
  if (/Too few free TX rings|request \d+ queues but max is|queues/i.test(message)) {
    return `native XDP on virtio-net needs queue pairs + vCPUs <= the NIC's queues: the plan gives ${ctx.queues} queues for ${ctx.cpus} vCPUs; check the domain's <driver queues=...> or run \`ethtool -L ${ctx.ifname} combined ${Math.max(1, ctx.queues - ctx.cpus)}\` in the VM`;
  }
  if (/MTU too large|mtu/i.test(message)) {
    return `the lab MTU ${ctx.mtu} does not fit one page with XDP headroom: use --mtu 3000 or lower (at most 3500)`;
  }
  if (/LRO|CSUM|offload|GRO_HW/i.test(message)) {
    return `the host implements offloads the guest cannot turn off: QEMU's virtio-net must offer control offloads (ctrl_guest_offloads=on, the default), or set <host .../><guest tso4='off' tso6='off' ecn='off' ufo='off' csum='off'/> with \`virsh edit\` on the domain`;
  }
  if (/generic/i.test(message)) {
    return `a generic-mode program is attached: remove it with \`ip link set dev ${ctx.ifname} xdpgeneric off\``;
  }
  return `see the message above; \`electrode-lab collect\` saves the node's dmesg`;
}

/** `vagrant status --machine-readable` -> machine -> state (running, shutoff, not_created...). */
export function parseVagrantStatus(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const f = line.split(',');
    if (f[2] === 'state' && f[1]) out.set(f[1], f[3] ?? 'unknown');
  }
  return out;
}

export interface KernelCheck {
  node: string;
  expected: string;
  actual: string;
  ok: boolean;
}

interface NodeInfo {
  /** The lab NIC inside the VM (found by the plan's MAC). */
  ifname: string;
  /** 'ok', or why the Electrode programs did not attach natively. */
  fastPaths?: string;
}

interface VagrantResources {
  vagrantDir: string;
  ssh: Record<string, SshTarget>;
  nodes: Record<string, NodeInfo>;
  buildMode: BuildMode;
  boxKernel?: string;
}


export class VagrantProvider implements Provider {
  readonly name = 'vagrant' as const;
  private sessions = new Map<string, Promise<SshSession>>();

  /** Faults inside the guests: the lab NIC (found by the plan's MAC) goes down or gets netem on its egress. */
  readonly faults: NodeFaults = {
    signal: async (plan, rec, sig, ctx) => {
      const node = plan.nodes.find((n) => n.name === rec.node);
      if (node) await remoteSignal((sc, o) => this.sh(plan, node, ctx, sc, o), rec, sig);
    },
    isolate: async (plan, node, on, ctx) => {
      await this.sh(plan, node, ctx, `ip link set "$(${labNicScript(node.mac)})" ${on ? 'down' : 'up'}`);
    },
    netem: async (plan, node, spec, ctx) => {
      // egress only: what XDP_TX sends bypasses it (the fast reply's acks are not impaired)
      const dev = `"$(${labNicScript(node.mac)})"`;
      if (spec) await this.sh(plan, node, ctx, `tc qdisc replace dev ${dev} root netem ${netemArgs(spec).join(' ')}`);
      else await this.sh(plan, node, ctx, `tc qdisc del dev ${dev} root 2>/dev/null; true`, { check: false });
    },
    canReorder: async (plan, ctx) => {
      const n = plan.nodes[0]!;
      const r = await this.sh(plan, n, ctx, 'modprobe sch_netem 2>/dev/null; tc qdisc add dev lo root netem delay 1ms && tc qdisc del dev lo root', { check: false });
      return r.exitCode === 0;
    },
  };

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  private vagrantEnv(): Record<string, string | undefined> {
    return { ...this.env, VAGRANT_DEFAULT_PROVIDER: 'libvirt', VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1', LIBVIRT_DEFAULT_URI: LIBVIRT_URI };
  }

  /** What this provider created (VMs' ssh targets, lab NICs, build mode), in the lab's state.json. */
  private loadResources(paths: LabPaths): VagrantResources {
    const r = loadResources<VagrantResources>(paths);
    if (r.vagrantDir) return { ssh: {}, nodes: {}, buildMode: buildModeFrom(this.env), ...r } as VagrantResources;
    // labs created before the record moved into state.json
    try {
      return JSON.parse(readFileSync(join(paths.vagrantDir, 'electrode-lab.json'), 'utf8')) as VagrantResources;
    } catch {
      return { vagrantDir: paths.vagrantDir, ssh: {}, nodes: {}, buildMode: buildModeFrom(this.env) };
    }
  }

  private saveResources(paths: LabPaths, res: VagrantResources): void {
    // no state file: a dry run (nothing is created, nothing to record)
    if (loadState(paths)) saveResources(paths, res);
  }

  private async vagrant(args: string[], ctx: ProviderContext, opts: { check?: boolean; node?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    const r = await ctx.runner.run(['vagrant', ...args], { cwd: ctx.paths.vagrantDir, env: this.vagrantEnv(), check: false, timeoutMs: opts.timeoutMs });
    // vagrant's own output (progress bars included) goes to the node's log, not the terminal
    if (!ctx.runner.dryRun) {
      const log = opts.node ? join(ctx.paths.nodeLogDir(opts.node), 'vagrant.log') : join(ctx.paths.logsDir, 'vagrant.log');
      mkdirSync(dirname(log), { recursive: true });
      writeFileSync(log, `\n$ vagrant ${args.join(' ')}  (exit ${r.exitCode}, ${r.durationMs} ms)\n${r.stdout}${r.stderr}`, { flag: 'a' });
    }
    if (opts.check !== false && (r.exitCode !== 0 || r.signal)) {
      const tail = (r.stderr || r.stdout).replace(/\r|\x1b\[K/g, '').trim().split('\n').filter((l) => !/Progress:/.test(l)).slice(-6).join('\n');
      throw new LabError(`\`vagrant ${args.join(' ')}\` failed (exit ${r.exitCode}); full output in ${ctx.paths.logsDir}\n${tail}`, 'VAGRANT_FAILED');
    }
    return r;
  }

  async probe(ctx: ProviderContext): Promise<Diagnostic[]> {
    const d = [...rootDiagnostic('the vagrant provider (libvirt system connection, bpffs in the VMs)'), ...missingTools(VAGRANT_TOOLS, this.env)];
    if (d.length || ctx.runner.dryRun) return d;
    // a daemon up can start itself is no problem: prepare starts it
    const ld = libvirtdDecision(await libvirtdFacts(ctx.runner, LIBVIRT_URI, this.vagrantEnv()), LIBVIRT_URI);
    if (ld.kind === 'stop') d.push(ld.diagnostic);
    return d;
  }

  /**
   * The box first (a stop here creates nothing), then the libvirt daemons
   * (started when this host has no systemd), then the box's build or add.
   * Prints which box, which kernel and why before any VM starts.
   */
  async prepare(plan: Plan, ctx: ProviderContext): Promise<Plan> {
    const { runner, progress } = ctx;
    const facts = await boxFacts(plan, this.env, () => progress.step(`${plan.vm.box} must be built: asking whether the internet answers (kernel mirror, Vagrant Cloud; ELECTRODE_LAB_OFFLINE=1 skips this)`, () => internetAnswers(this.env)));
    const d = boxDecision(facts, (k) => {
      try {
        return bzImageRelease(readFileSync(k.path));
      } catch {
        return undefined;
      }
    });
    if (d.kind === 'stop') throw new DiagnosticsError([d.diagnostic], 'preconditions');
    const next = planOnBox(plan, d);
    const kernel = next.vm.kernel === 'box' ? d.kernel : `${next.vm.kernel} (the lab's pin, installed in each VM at provisioning)`;
    progress.info(`box: ${d.box}, kernel ${kernel}`);
    progress.info(`  why: ${d.why}`);
    if (d.fallback && next.spec.vm.build === 'host' && plan.spec.vm.build === undefined) progress.info(`  binaries: host-built (--build host): ${d.box} has no compiler`);

    let started: StartedDaemon[] = [];
    if (runner.dryRun) {
      progress.info('[dry-run] would start virtlogd and libvirtd here if they are down and this host has no systemd');
    } else {
      const ld = libvirtdDecision(await libvirtdFacts(runner, LIBVIRT_URI, this.vagrantEnv()), LIBVIRT_URI);
      if (ld.kind === 'stop') throw new DiagnosticsError([ld.diagnostic], 'preconditions');
      if (ld.kind === 'start') {
        progress.info(`${ld.why}: starting ${ld.daemons.join(' and ')} (once, for every VM lab on this host)`);
        started = await startDaemons(ld.daemons, { runner, progress, home: ctx.paths.home, lab: plan.lab, uri: LIBVIRT_URI, env: this.vagrantEnv() });
      }
    }
    if (d.step !== 'none' && d.recipe) {
      if (runner.dryRun) {
        progress.info(`[dry-run] would ${d.step === 'add' ? 'add the cached build of' : 'build and add'} ${d.box} (\`electrode-lab box build ${d.recipe.name}\`)`);
      } else {
        try {
          await buildAndAddBox(d.recipe, d.image ? { kernelImage: d.image.path } : {}, { runner, progress, env: this.env });
        } catch (e) {
          if (started.length) await this.stopDaemons(plan, ctx);
          throw e;
        }
      }
    }
    return next;
  }

  /** The libvirt daemons an `up` started, when no other VM lab is left. */
  private async stopDaemons(plan: Plan, ctx: ProviderContext): Promise<void> {
    await stopDaemonsIfLast({ runner: ctx.runner, progress: ctx.progress, home: ctx.paths.home, lab: plan.lab, vmLab: (p) => p === this.name });
  }

  async up(plan: Plan, ctx: ProviderContext): Promise<void> {
    const { paths, progress, runner } = ctx;
    const buildMode = plan.spec.vm.build ?? (this.env.ELECTRODE_LAB_VM_BUILD ? buildModeFrom(this.env) : BOX_RECIPES.find((b) => b.box === plan.vm.box)?.hostBuild ? 'host' : 'guest');
    if (buildMode === 'host' && !runner.dryRun) {
      const missing = hostArtifacts().filter((f) => !existsSync(f));
      if (missing.length) throw new LabError(`--build host needs ${missing.join(', ')}; run \`npm run build\` first`, 'HOST_BUILD_MISSING');
    }
    const boxKernel = boxKernelOf(plan.vm.box, this.env);
    const pin = plan.vm.kernel === 'box' ? undefined : kernelPin(plan.vm.kernel);
    if (plan.vm.kernel !== 'box' && boxKernel !== plan.vm.kernel && !pin) {
      throw new LabError(
        `box ${plan.vm.box} records kernel ${boxKernel ?? '(unknown)'}, the lab pins ${plan.vm.kernel} and electrode-lab has no install recipe for it; use --kernel box or a box with that kernel`,
        'KERNEL_NO_RECIPE',
      );
    }
    paths.ensureDirs(plan.nodes.map((n) => n.name));
    mkdirSync(paths.vagrantDir, { recursive: true });
    writeFileSync(join(paths.vagrantDir, 'Vagrantfile'), renderVagrantfile(plan));
    const res: VagrantResources = { vagrantDir: paths.vagrantDir, ssh: {}, nodes: {}, buildMode, ...(boxKernel ? { boxKernel } : {}) };
    this.saveResources(paths, res);

    // one VM at a time: parallel vagrant-libvirt starts race (REFERENCE.md 3)
    for (const [i, n] of plan.nodes.entries()) {
      await progress.step(`${n.name} (${i + 1}/${plan.nodes.length}): vagrant up, ${plan.vm.driver} ${plan.vm.cpus} vCPU ${plan.vm.memory} MiB, ${n.ip} ${n.mac}`, async () => {
        await this.vagrant(['up', '--no-parallel', '--no-provision', '--provider', 'libvirt', n.name], ctx, { node: n.name });
        if (!runner.dryRun) res.ssh[n.name] = await this.readSshTarget(n.name, ctx);
        this.saveResources(paths, res);
      });
    }
    if (runner.dryRun) return;

    for (const n of plan.nodes) {
      await progress.step(`${n.name}: provision (kernel, ${buildMode === 'host' ? 'host-built binaries' : 'build in the VM'}, lab files, bpffs)`, async () => {
        const kernel = (await this.sh(plan, n, ctx, 'uname -r')).stdout.trim();
        if (pin && kernel !== pin.release) {
          await this.installKernel(plan, n, ctx, res);
        }
        const nic = await this.findLabNic(plan, n, ctx);
        res.nodes[n.name] = { ifname: nic };
        this.saveResources(paths, res);
        await this.installBinaries(plan, n, ctx, buildMode);
        await this.installLabFiles(plan, n, ctx);
      });
    }
    for (const n of replicas(plan)) {
      await progress.step(`${n.name}: native XDP on ${res.nodes[n.name]?.ifname} (virtio-net, XDP_PASS program)`, async () => {
        await this.checkNicXdp(plan, n, ctx);
      });
    }
    // the Electrode programs themselves: a verifier refusal on the guest kernel is reported, not
    // fatal, so the lab still serves the no-fast-path baseline
    const refused: string[] = [];
    for (const n of replicas(plan)) {
      await progress.step(`${n.name}: attach all fast paths natively, verify, detach`, async () => {
        try {
          await this.checkNativeXdp(plan, n, ctx);
          res.nodes[n.name] = { ...res.nodes[n.name]!, fastPaths: 'ok' };
        } catch (e) {
          const msg = (e as Error).message;
          res.nodes[n.name] = { ...res.nodes[n.name]!, fastPaths: msg.split('\n').slice(-2).join(' ') };
          refused.push(`${n.name}: ${msg}`);
        }
        this.saveResources(paths, res);
      });
    }
    if (refused.length) progress.warn(`the fast paths did not attach; the lab is up for runs without them:\n${refused.join('\n')}`);
    const drift = await checkKernelPins(plan, ctx, this);
    if (drift.length) throw new LabError(`kernel drift: ${drift.map((c) => `${c.node} runs ${c.actual}, expected ${c.expected}`).join('; ')}`, 'KERNEL_DRIFT');
  }

  private async readSshTarget(node: string, ctx: ProviderContext): Promise<SshTarget> {
    const r = await this.vagrant(['ssh-config', node], ctx, { node });
    const t = parseSshConfig(r.stdout).find((x) => x.name === node);
    if (!t) throw new LabError(`\`vagrant ssh-config ${node}\` printed no usable Host block; see ${ctx.paths.nodeLogDir(node)}/vagrant.log`, 'VAGRANT_SSH_CONFIG');
    return t;
  }

  private session(plan: Plan, node: PlanNode, ctx: ProviderContext): Promise<SshSession> {
    let s = this.sessions.get(node.name);
    if (!s) {
      const target = this.loadResources(ctx.paths).ssh[node.name];
      if (!target) return Promise.reject(new LabError(`no ssh address recorded for ${node.name}; is lab '${plan.lab}' up? (\`electrode-lab status\`)`, 'VAGRANT_NO_SSH'));
      mkdirSync(ctx.paths.nodeLogDir(node.name), { recursive: true });
      s = SshSession.connect(target, { logFile: join(ctx.paths.nodeLogDir(node.name), 'ssh.log') });
      s.catch(() => this.sessions.delete(node.name));
      this.sessions.set(node.name, s);
    }
    return s;
  }

  private dropSession(node: string): void {
    const s = this.sessions.get(node);
    this.sessions.delete(node);
    s?.then((x) => x.close()).catch(() => undefined);
  }

  /** Closes every ssh session (call when done, or node keeps the process alive). */
  closeSessions(): void {
    for (const n of [...this.sessions.keys()]) this.dropSession(n);
  }

  /** A root shell command line on the node. */
  private async sh(plan: Plan, node: PlanNode, ctx: ProviderContext, script: string, opts: RunOptions = {}): Promise<RunResult> {
    return this.exec(plan, node, ['sh', '-c', script], ctx, opts);
  }

  private async installKernel(plan: Plan, n: PlanNode, ctx: ProviderContext, res: VagrantResources): Promise<void> {
    const pin = kernelPin(plan.vm.kernel)!;
    const mirror = kernelMirror(this.env);
    const { sums, source } = await resolveChecksums(pin, defaultLockFile(), mirror, async (url) => {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return r.text();
    });
    ctx.progress.info(`${n.name}: kernel ${pin.release} checksums from ${source}`);
    const s = await this.session(plan, n, ctx);
    const tmp = mkdtempSync(join(tmpdir(), 'el-kernel-'));
    try {
      writeFileSync(join(tmp, 'kernel.sh'), kernelInstallScript(pin, sums, mirror));
      await s.putFile(join(tmp, 'kernel.sh'), '/tmp/electrode-lab-kernel.sh', 0o755);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    await this.exec(plan, n, ['bash', '/tmp/electrode-lab-kernel.sh', 'all'], ctx, { timeoutMs: 1_800_000 });
    this.dropSession(n.name);
    await this.vagrant(['reload', '--no-provision', n.name], ctx, { node: n.name });
    res.ssh[n.name] = await this.readSshTarget(n.name, ctx);
    this.saveResources(ctx.paths, res);
    const r = await this.exec(plan, n, ['bash', '/tmp/electrode-lab-kernel.sh', 'assert'], ctx, { check: false });
    if (r.exitCode !== 0) throw new LabError(`${n.name}: ${r.stderr.trim() || r.stdout.trim()}`, 'KERNEL_DRIFT');
  }

  private async findLabNic(plan: Plan, n: PlanNode, ctx: ProviderContext): Promise<string> {
    const links = await this.exec(plan, n, ['ip', '-o', 'link', 'show'], ctx);
    const ifname = ifnameForMac(links.stdout, n.mac);
    if (!ifname) {
      throw new LabError(`${n.name}: no interface with MAC ${n.mac}; the VM's NICs are:\n${links.stdout.trim()}\nrun \`electrode-lab down\` and up again (the Vagrantfile sets the MAC)`, 'VAGRANT_NO_LAB_NIC');
    }
    const addr = await this.exec(plan, n, ['ip', '-o', '-4', 'addr', 'show', 'dev', ifname], ctx);
    if (!addr.stdout.includes(`inet ${n.ip}/`)) {
      // vagrant's guest plugin configures it; a box without one gets it here
      await this.exec(plan, n, ['ip', 'addr', 'add', `${n.ip}/${plan.network.prefix}`, 'dev', ifname], ctx);
      await this.exec(plan, n, ['ip', 'link', 'set', ifname, 'mtu', String(plan.network.mtu), 'up'], ctx);
    }
    const ch = parseChannels((await this.exec(plan, n, ['ethtool', '-l', ifname], ctx, { check: false })).stdout);
    const cpus = Number((await this.exec(plan, n, ['nproc'], ctx)).stdout.trim()) || plan.vm.cpus;
    if (ch) {
      if (ch.max < plan.vm.queues) ctx.progress.warn(`${n.name}: ${ifname} has ${ch.max} queue pairs, the plan asked for ${plan.vm.queues}`);
      const k = channelsForXdp(ch, cpus);
      if (k !== undefined) await this.exec(plan, n, ['ethtool', '-L', ifname, 'combined', String(k)], ctx);
    }
    return ifname;
  }

  private async installBinaries(plan: Plan, n: PlanNode, ctx: ProviderContext, mode: BuildMode): Promise<void> {
    const root = projectRoot();
    const s = await this.session(plan, n, ctx);
    const tmp = mkdtempSync(join(tmpdir(), 'el-src-'));
    try {
      const tgz = join(tmp, 'payload.tgz');
      if (mode === 'host') {
        await ctx.runner.run(['tar', '-C', root, '-czf', tgz, ...hostArtifacts(root).map((f) => f.slice(root.length + 1))]);
      } else {
        await ctx.runner.run(['tar', '-C', root, '--exclude=build', '-czf', tgz, 'native', 'bpf']);
      }
      await s.putFile(tgz, '/tmp/electrode-lab-payload.tgz');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    await this.exec(plan, n, ['mkdir', '-p', root], ctx);
    await this.exec(plan, n, ['tar', '-C', root, '-xzf', '/tmp/electrode-lab-payload.tgz'], ctx);
    if (mode === 'guest') {
      const tools = await this.sh(plan, n, ctx, 'for t in make cc clang; do command -v $t >/dev/null || echo $t; done', { check: false });
      if (tools.stdout.trim()) {
        throw new LabError(`${n.name}: the box has no ${tools.stdout.trim().split('\n').join(', ')} to build electrode-lab; use a box with the toolchain (electrode-lab/ubuntu2004-k58) or copy host-built binaries with \`--build host\` (same-distro guests, e.g. debian12)`, 'VAGRANT_NO_TOOLCHAIN');
      }
      await this.exec(plan, n, ['make', '-s', '-C', join(root, 'native')], ctx, { timeoutMs: 1_800_000 });
      await this.exec(plan, n, ['make', '-s', '-C', join(root, 'bpf')], ctx, { timeoutMs: 1_800_000 });
    }
    const check = await this.exec(plan, n, [loaderPath(root), '--help'], ctx, { check: false });
    if (/error while loading shared libraries|not found/.test(check.stderr)) {
      throw new LabError(`${n.name}: el-loader cannot run in the VM (${check.stderr.trim().split('\n')[0]}); install libbpf1 libelf1 in the box or build in the guest`, 'VAGRANT_BINARIES');
    }
  }

  private async installLabFiles(plan: Plan, n: PlanNode, ctx: ProviderContext): Promise<void> {
    const { paths } = ctx;
    const s = await this.session(plan, n, ctx);
    const mirror = (p: string) => ['install', '-D', '-m', '0644', `/tmp/${p.replace(/\//g, '_')}`, p];
    for (const f of [paths.replicaConfigFile, paths.peerTableFile]) {
      await s.putFile(f, `/tmp/${f.replace(/\//g, '_')}`);
      await this.exec(plan, n, mirror(f), ctx);
    }
    await this.exec(plan, n, ['mkdir', '-p', paths.nodeLogDir(n.name), paths.pidsDir], ctx);
    await this.sh(plan, n, ctx, `mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; mkdir -p ${shellQuote([n.pinDir])}`);
  }

  /**
   * Native XDP on the lab NIC: `attach` puts a program on it, `ip -d -j link`
   * must then say native, `detach` takes it off again whatever happened. A
   * failure says what to change (xdpAttachFix).
   */
  private async verifyNativeXdp(plan: Plan, n: PlanNode, ctx: ProviderContext, what: string, attach: (ifname: string) => Promise<RunResult>, detach: (ifname: string) => Promise<unknown>): Promise<string> {
    const ifname = this.loadResources(ctx.paths).nodes[n.name]?.ifname;
    if (!ifname) throw new LabError(`${n.name}: lab NIC unknown; run \`electrode-lab up\``, 'VAGRANT_NO_LAB_NIC');
    const fixCtx = { ifname, cpus: plan.vm.cpus, queues: plan.vm.queues, mtu: plan.network.mtu };
    const a = await attach(ifname);
    try {
      if (a.exitCode !== 0) {
        const dmesg = (await this.exec(plan, n, ['dmesg'], ctx, { check: false })).stdout.split('\n').slice(-5).join('\n');
        throw new LabError(`${n.name}: native XDP ${what} on ${ifname} failed:\n${a.stderr.trim()}\nfix: ${xdpAttachFix(`${a.stderr}\n${dmesg}`, fixCtx)}`, 'XDP_ATTACH_FAILED');
      }
      const link = await this.exec(plan, n, ['ip', '-d', '-j', 'link', 'show', 'dev', ifname], ctx);
      const mode = xdpMode(link.stdout);
      if (mode !== 'native') throw new LabError(`${n.name}: after ${what}, ${ifname} shows XDP mode '${mode}', not native; fix: ${xdpAttachFix(mode, fixCtx)}`, 'XDP_NOT_NATIVE');
      return link.stdout;
    } finally {
      await detach(ifname);
    }
  }

  /** Native XDP readiness of the lab NIC itself, independent of the Electrode programs: a one-instruction XDP_PASS program. */
  async checkNicXdp(plan: Plan, n: PlanNode, ctx: ProviderContext): Promise<void> {
    const obj = passProgram();
    const s = await this.session(plan, n, ctx);
    await s.putFile(obj, '/tmp/electrode-lab-xdp-pass.o');
    await this.verifyNativeXdp(
      plan, n, ctx, 'attach (XDP_PASS)',
      (ifname) => this.exec(plan, n, ['ip', 'link', 'set', 'dev', ifname, 'xdpdrv', 'obj', '/tmp/electrode-lab-xdp-pass.o', 'sec', 'xdp'], ctx, { check: false }),
      (ifname) => this.exec(plan, n, ['ip', 'link', 'set', 'dev', ifname, 'xdpdrv', 'off'], ctx, { check: false }),
    );
  }

  /** Attaches every fast path in native mode on the lab NIC, checks it is native, detaches. */
  async checkNativeXdp(plan: Plan, n: PlanNode, ctx: ProviderContext): Promise<string> {
    const loader = loaderPath();
    const nic = this.nicArgs(plan, n);
    return this.verifyNativeXdp(
      plan, n, ctx, 'attach of the fast paths',
      () => this.exec(plan, n, loaderArgv.attach(loader, { pinDir: n.pinDir, peers: ctx.paths.peerTableFile, index: n.index, nic, fp: { broadcast: true, quorum: true, reply: true }, hook: 'xdp', xdpMode: 'native', json: false }), ctx, { check: false }),
      () => this.exec(plan, n, loaderArgv.detach(loader, n.pinDir, nic), ctx, { check: false }),
    );
  }

  async down(plan: Plan, ctx: ProviderContext): Promise<void> {
    const { paths, progress, runner } = ctx;
    this.closeSessions();
    if (existsSync(join(paths.vagrantDir, 'Vagrantfile')) || runner.dryRun) {
      await progress.step(`vagrant destroy -f (${plan.nodes.length} VMs)`, async () => {
        const r = await this.vagrant(['destroy', '-f'], ctx, { check: false });
        if (r.exitCode !== 0) progress.warn(`vagrant destroy exited ${r.exitCode}; sweeping libvirt for leftovers`);
      });
    }
    await progress.step(`libvirt sweep: domains ${domainPrefix(plan)}*, network ${plan.vm.libvirtNetwork}, volumes`, async () => {
      await this.sweepLibvirt(plan, ctx);
    });
    await this.stopDaemons(plan, ctx);
  }

  /** Removes this lab's domains, volumes and private network, whatever vagrant left. */
  async sweepLibvirt(plan: Plan, ctx: ProviderContext): Promise<void> {
    const r = ctx.runner;
    const virsh = (...a: string[]) => r.run(['virsh', '-q', '-c', LIBVIRT_URI, ...a], { check: false, env: this.vagrantEnv() });
    const names = plan.nodes.map((n) => `${domainPrefix(plan)}${n.name}`);
    const doms = (await virsh('list', '--all', '--name')).stdout.split('\n').map((s) => s.trim());
    for (const d of names.filter((x) => doms.includes(x))) {
      await virsh('destroy', d);
      await virsh('undefine', d, '--remove-all-storage', '--nvram');
    }
    const nets = (await virsh('net-list', '--all', '--name')).stdout.split('\n').map((s) => s.trim());
    if (nets.includes(plan.vm.libvirtNetwork)) {
      await virsh('net-destroy', plan.vm.libvirtNetwork);
      await virsh('net-undefine', plan.vm.libvirtNetwork);
    }
    const vols = (await virsh('vol-list', 'default')).stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '');
    for (const v of vols.filter((v) => names.some((n) => v.startsWith(`${n}.`) || v.startsWith(`${n}-`)))) await virsh('vol-delete', '--pool', 'default', v);
  }

  /** The file's tail over ssh (base64, so binary data survives). */
  async copyOut(plan: Plan, node: PlanNode, remote: string, local: string, ctx: ProviderContext, maxBytes = 64 * 1024 * 1024): Promise<boolean> {
    return remoteCopyOut((sc, o) => this.sh(plan, node, ctx, sc, o), remote, local, ctx.runner.dryRun, maxBytes);
  }

  async exec(plan: Plan, node: PlanNode, argv: string[], ctx: ProviderContext, opts: RunOptions = {}): Promise<RunResult> {
    if (ctx.runner.dryRun) return ctx.runner.run(['vagrant', 'ssh', node.name, '-c', sudoCommand(argv)], opts);
    const s = await this.session(plan, node, ctx);
    return s.exec(sudoCommand(argv), { check: opts.check, input: opts.input, timeoutMs: opts.timeoutMs, echo: opts.stdio === 'inherit', bulkStdout: opts.bulkStdout });
  }

  async spawn(plan: Plan, node: PlanNode, name: string, argv: string[], ctx: ProviderContext): Promise<ProcessRecord> {
    // the log lives at the same path inside the VM; copyOut brings it here
    const rec = await remoteSpawn((sc, o) => this.sh(plan, node, ctx, sc, o), node, name, argv, ctx.paths.processLog(node.name, name), ctx.runner.dryRun);
    if (!ctx.runner.dryRun) saveProcessRecord(ctx.paths, rec);
    return rec;
  }

  /** TCG guests: ssh round trips of a second or more, and a replica start that can take tens of seconds. */
  readonly startTimeoutMs = 180_000;
  readonly sharedKernel = false;
  readonly ingressHook = 'xdp' as const;

  /** `vagrant ssh <node>`: the terminal belongs to it, not to a captured runner. */
  shell(plan: Plan, node: PlanNode, ctx: ProviderContext, env: NodeJS.ProcessEnv): number {
    if (ctx.runner.dryRun) {
      ctx.progress.info(`[dry-run] (cd ${ctx.paths.vagrantDir} && vagrant ssh ${node.name})`);
      return 0;
    }
    const r = spawnSync('vagrant', ['ssh', node.name], { cwd: ctx.paths.vagrantDir, stdio: 'inherit', env: { ...env, VAGRANT_DEFAULT_PROVIDER: 'libvirt' } });
    return r.status ?? 1;
  }

  /** Interface names differ between boxes: el-loader finds the lab NIC by the plan's MAC. */
  nicArgs(_plan: Plan, node: PlanNode): string[] {
    return ['--ifmac', node.mac];
  }

  /** The guests write cores into GUEST_CORES_DIR: their own core_pattern (the VMs belong to the lab). */
  async prepareCores(plan: Plan, ctx: ProviderContext): Promise<void> {
    for (const n of replicas(plan)) {
      const r = await this.exec(plan, n, ['sh', '-c', coresPatternScript()], ctx, { check: false });
      if (r.exitCode !== 0) ctx.progress.warn(`${n.name}: could not set the guest's core_pattern (${r.stderr.trim()}); crashes there leave no core`);
    }
  }

  /** A process that died in a VM: gdb in the guest, the core copied out (remote.ts). */
  async findCore(plan: Plan, node: PlanNode, rec: ProcessRecord, binary: string, ctx: ProviderContext, hostCoresDir: string): Promise<FoundCore> {
    return remoteFindCore((argv, o) => this.exec(plan, node, argv, ctx, o), node, rec, binary, hostCoresDir);
  }

  /** VMs whose `uname -r` is not the lab's kernel (its pin, or the box's own). */
  async kernelDrift(plan: Plan, ctx: ProviderContext): Promise<KernelDrift[]> {
    return (await checkKernelPins(plan, ctx, this)).map(({ node, expected, actual }) => ({ node, expected, actual }));
  }

  async alive(plan: Plan, rec: ProcessRecord, ctx: ProviderContext): Promise<boolean> {
    const node = plan.nodes.find((n) => n.name === rec.node);
    return node ? remoteAlive((sc, o) => this.sh(plan, node, ctx, sc, o), rec) : false;
  }

  async udpBound(plan: Plan, node: PlanNode, port: number, _rec: ProcessRecord, ctx: ProviderContext): Promise<boolean> {
    return remoteUdpBound((sc, o) => this.sh(plan, node, ctx, sc, o), port);
  }

  async stop(plan: Plan, rec: ProcessRecord, ctx: ProviderContext): Promise<void> {
    const node = plan.nodes.find((n) => n.name === rec.node);
    if (node) await remoteStop((sc, o) => this.sh(plan, node, ctx, sc, o), rec);
    if (!ctx.runner.dryRun) removeProcessRecord(ctx.paths, rec);
  }

  async status(plan: Plan, ctx: ProviderContext): Promise<NodeStatus[]> {
    const { paths } = ctx;
    const st = existsSync(join(paths.vagrantDir, 'Vagrantfile')) ? parseVagrantStatus((await this.vagrant(['status', '--machine-readable'], ctx, { check: false })).stdout) : new Map<string, string>();
    const res = this.loadResources(paths);
    const records = loadProcessRecords(paths);
    const expectedKernel = labKernel(plan, this.env);
    const out: NodeStatus[] = [];
    for (const n of plan.nodes) {
      const state = st.get(n.name);
      const up = state === 'running';
      let bpf: string[] = [];
      let detail: string | undefined = up ? undefined : `VM ${state ?? 'unknown'}`;
      let kernel: string | undefined;
      const procs: NodeStatus['processes'] = [];
      const ifname = res.nodes[n.name]?.ifname;
      if (up && ifname) {
        try {
          bpf = (await attachedBpfOn((argv) => this.exec(plan, n, argv, ctx, { check: false }), ifname)).bpf;
          for (const p of records.filter((p) => p.node === n.name)) procs.push({ name: p.name, pid: p.pid, alive: await this.alive(plan, p, ctx) });
          const fp = res.nodes[n.name]?.fastPaths;
          // the live kernel, not the one recorded at up: a VM whose kernel drifted from the pin is reported here
          const uname = await this.exec(plan, n, ['uname', '-r'], ctx, { check: false });
          kernel = uname.exitCode === 0 ? uname.stdout.trim() : undefined;
          detail = vmStatusDetail({ ifname, kernel, expectedKernel, fastPaths: fp });
        } catch (e) {
          detail = (e as Error).message.split('\n')[0];
        }
      }
      out.push(nodeStatus(n, { state: up ? 'up' : state ? 'down' : 'unknown', processes: procs, bpf, ...(kernel ? { kernel } : {}), ...(detail ? { detail } : {}) }));
    }
    this.closeSessions();
    return out;
  }

  async collect(plan: Plan, node: PlanNode, destDir: string, ctx: ProviderContext): Promise<void> {
    const { paths } = ctx;
    mkdirSync(destDir, { recursive: true });
    const console = join(paths.nodeLogDir(node.name), 'console.log');
    if (existsSync(console)) cpSync(console, join(destDir, 'console.log'));
    await collectRemote((argv, o) => this.exec(plan, node, argv, ctx, o), destDir, this.loadResources(paths).nodes[node.name]?.ifname);
  }
}

/** The kernel a lab's VMs must run: its pin, or with `--kernel box` the kernel the box records (undefined when it recorded none). */
export function labKernel(plan: Plan, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return plan.vm.kernel === 'box' ? boxKernelOf(plan.vm.box, env) : plan.vm.kernel;
}

/** The status note of a running VM: its lab NIC, its live kernel (flagged when it drifted from the lab's), a failed fast-path check at up. */
export function vmStatusDetail(o: { ifname: string; kernel?: string; expectedKernel?: string; fastPaths?: string }): string {
  const drifted = o.kernel !== undefined && o.expectedKernel !== undefined && o.kernel !== o.expectedKernel;
  const drift = drifted ? ` DRIFTED from the lab's ${o.expectedKernel} (bench refuses it; \`electrode-lab down\` + \`up\` reinstall the pin)` : '';
  const fp = o.fastPaths && o.fastPaths !== 'ok' ? `, fast paths did not attach at up: ${o.fastPaths}` : '';
  return `lab NIC ${o.ifname}, kernel ${o.kernel ?? '? (uname -r failed)'}${drift}${fp}`;
}

/**
 * Every VM's `uname -r` against the plan's kernel pin (or, with
 * `--kernel box`, against the kernel the box records).
 */
export async function kernelChecks(plan: Plan, ctx: ProviderContext, provider = new VagrantProvider()): Promise<KernelCheck[]> {
  if (plan.provider !== 'vagrant') return [];
  const expected = labKernel(plan);
  const out: KernelCheck[] = [];
  try {
    for (const n of plan.nodes) {
      const r = await provider.exec(plan, n, ['uname', '-r'], ctx, { check: false }).catch((e: Error) => ({ exitCode: 255, stdout: '', stderr: e.message }));
      const actual = r.exitCode === 0 ? r.stdout.trim() : `unreachable (${(r.stderr || '').trim().split('\n')[0]})`;
      out.push({ node: n.name, expected: expected ?? '(box kernel not recorded)', actual, ok: ctx.runner.dryRun || (expected === undefined ? r.exitCode === 0 : actual === expected) });
    }
  } finally {
    provider.closeSessions();
  }
  return out;
}

/**
 * For the bench: the VMs whose kernel drifted from the pin (empty = all
 * good). A bench must refuse to run when this returns anything.
 */
export async function checkKernelPins(plan: Plan, ctx: ProviderContext, provider?: VagrantProvider): Promise<KernelCheck[]> {
  return (await kernelChecks(plan, ctx, provider)).filter((c) => !c.ok);
}
