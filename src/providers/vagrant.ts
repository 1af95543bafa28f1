/**
 * The Vagrant/libvirt provider: one VM per plan node, rendered into a
 * Vagrantfile (src/providers/vagrantfile.ts) in the lab's vagrant folder, brought up
 * one VM at a time (`vagrant up --no-parallel`), then provisioned over ssh2:
 * kernel pin, electrode-lab binaries, lab files, bpffs, and a native-XDP
 * check on the lab NIC, which is found by the plan's MAC.
 *
 * Guest layout mirrors the host: binaries, the replica config, the peer
 * table and the process logs sit at the SAME absolute paths inside every VM
 * as on the host (projectRoot()/native/build/replica, the lab's files/...),
 * so a command line built for the netns provider runs unchanged in a VM.
 */
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Diagnostic, LabError } from '../core/diagnostics.js';
import { BOX_RECIPES, boxKernel as boxKernelOf } from '../images/boxes.js';
import { libvirtdDecision, libvirtdFacts } from './libvirtd.js';
import { kernelPin } from '../images/kernel.js';
import { LabPaths } from '../edges/paths.js';
import { hostArtifacts } from '../edges/build.js';
import { Plan, PlanNode, replicas } from '../core/plan.js';
import { missingTools, rootDiagnostic } from '../edges/probe.js';
import { RunOptions, RunResult } from '../edges/runner.js';
import { SshSession, sudoCommand } from '../edges/ssh.js';
import { loadProcessRecords, removeProcessRecord, saveProcessRecord } from '../edges/state.js';
import { domainPrefix, renderVagrantfile } from './vagrantfile.js';
import { attachedBpfOn, nodeStatus } from './status.js';
import { collectRemote, coresPatternScript, remoteAlive, remoteCopyOut, remoteFindCore, remoteSignal, remoteSpawn, remoteStop, remoteUdpBound } from './remote.js';
import { CoresAbility, FaultAbility, FoundCore, KernelDrift, KernelPinAbility, NicNamingAbility, NodeFaults, NodeStatus, PrepareAbility, ProcessRecord, Provider, ProviderContext, ShellAbility, netemArgs } from './provider.js';
import { LIBVIRT_URI, VAGRANT_TOOLS, VagrantRunOptions, parseVagrantStatus, readSshTarget, runVagrant, sweepLibvirt, vagrantEnv } from './vagrantCli.js';
import { buildModeFrom, loadVagrantResources, saveVagrantResources, VagrantResources } from './vagrantState.js';
import { Guest, installBinaries, installKernel, installLabFiles } from './vagrantGuest.js';
import { checkNativeXdp, checkNicXdp, findLabNic, labNicScript } from './vagrantNic.js';
import { KernelCheck, kernelChecks, labKernel, VmShell, vmStatusDetail } from './vagrantKernel.js';
import { prepareVagrantHost, stopVagrantDaemons } from './vagrantHost.js';

export { VAGRANT_TOOLS, LIBVIRT_URI, parseVagrantStatus } from './vagrantCli.js';
export { GUEST_CORES_DIR, GUEST_CORE_COPY_MAX } from './remote.js';
export { buildModeFrom } from './vagrantState.js';
export type { BuildMode } from './vagrantState.js';
export { hostArtifacts };
export { passProgram, labNicScript, ifnameForMac, parseChannels, channelsForXdp, xdpAttachFix } from './vagrantNic.js';
export { labKernel, vmStatusDetail, kernelChecks } from './vagrantKernel.js';
export type { KernelCheck } from './vagrantKernel.js';

export class VagrantProvider implements Provider, FaultAbility, PrepareAbility, NicNamingAbility, CoresAbility, KernelPinAbility, ShellAbility {
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

  private loadResources(paths: LabPaths): VagrantResources {
    return loadVagrantResources(paths, this.env);
  }

  private vagrant(args: string[], ctx: ProviderContext, opts: VagrantRunOptions = {}): Promise<RunResult> {
    return runVagrant(args, ctx, this.env, opts);
  }

  /** The node as provisioning and the NIC checks see it. */
  private guest(plan: Plan, node: PlanNode, ctx: ProviderContext): Guest {
    return {
      plan, node, ctx,
      exec: (argv, opts) => this.exec(plan, node, argv, ctx, opts),
      sh: (script, opts) => this.sh(plan, node, ctx, script, opts),
      session: () => this.session(plan, node, ctx),
    };
  }

  /** The lab NIC found at up. */
  private labNic(n: PlanNode, ctx: ProviderContext): string {
    const ifname = this.loadResources(ctx.paths).nodes[n.name]?.ifname;
    if (!ifname) throw new LabError(`${n.name}: lab NIC unknown; run \`electrode-lab up\``, 'VAGRANT_NO_LAB_NIC');
    return ifname;
  }

  async probe(ctx: ProviderContext): Promise<Diagnostic[]> {
    const d = [...rootDiagnostic('the vagrant provider (libvirt system connection, bpffs in the VMs)'), ...missingTools(VAGRANT_TOOLS, this.env)];
    if (d.length || ctx.runner.dryRun) return d;
    // a daemon up can start itself is no problem: prepare starts it
    const ld = libvirtdDecision(await libvirtdFacts(ctx.runner, LIBVIRT_URI, vagrantEnv(this.env)), LIBVIRT_URI);
    if (ld.kind === 'stop') d.push(ld.diagnostic);
    return d;
  }

  /** The box and the libvirt daemons, before any VM starts (vagrantHost.ts). */
  prepare(plan: Plan, ctx: ProviderContext): Promise<Plan> {
    return prepareVagrantHost(plan, ctx, this.env);
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
    saveVagrantResources(paths, res);

    // one VM at a time: parallel vagrant-libvirt starts race (REFERENCE.md 3)
    for (const [i, n] of plan.nodes.entries()) {
      await progress.step(`${n.name} (${i + 1}/${plan.nodes.length}): vagrant up, ${plan.vm.driver} ${plan.vm.cpus} vCPU ${plan.vm.memory} MiB, ${n.ip} ${n.mac}`, async () => {
        await this.vagrant(['up', '--no-parallel', '--no-provision', '--provider', 'libvirt', n.name], ctx, { node: n.name });
        if (!runner.dryRun) res.ssh[n.name] = await readSshTarget(n.name, ctx, this.env);
        saveVagrantResources(paths, res);
      });
    }
    if (runner.dryRun) return;

    for (const n of plan.nodes) {
      await progress.step(`${n.name}: provision (kernel, ${buildMode === 'host' ? 'host-built binaries' : 'build in the VM'}, lab files, bpffs)`, async () => {
        const g = this.guest(plan, n, ctx);
        const kernel = (await g.sh('uname -r')).stdout.trim();
        if (pin && kernel !== pin.release) {
          await installKernel(g, this.env, async () => {
            this.dropSession(n.name);
            await this.vagrant(['reload', '--no-provision', n.name], ctx, { node: n.name });
            res.ssh[n.name] = await readSshTarget(n.name, ctx, this.env);
            saveVagrantResources(ctx.paths, res);
          });
        }
        const nic = await findLabNic(g);
        res.nodes[n.name] = { ifname: nic };
        saveVagrantResources(paths, res);
        await installBinaries(g, buildMode);
        await installLabFiles(g);
      });
    }
    for (const n of replicas(plan)) {
      await progress.step(`${n.name}: native XDP on ${res.nodes[n.name]?.ifname} (virtio-net, XDP_PASS program)`, async () => {
        await checkNicXdp(this.guest(plan, n, ctx), this.labNic(n, ctx));
      });
    }
    // the Electrode programs themselves: a verifier refusal on the guest kernel is reported, not
    // fatal, so the lab still serves the no-fast-path baseline
    const refused: string[] = [];
    for (const n of replicas(plan)) {
      await progress.step(`${n.name}: attach all fast paths natively, verify, detach`, async () => {
        try {
          await checkNativeXdp(this.guest(plan, n, ctx), this.labNic(n, ctx), this.nicArgs(plan, n));
          res.nodes[n.name] = { ...res.nodes[n.name]!, fastPaths: 'ok' };
        } catch (e) {
          const msg = (e as Error).message;
          res.nodes[n.name] = { ...res.nodes[n.name]!, fastPaths: msg.split('\n').slice(-2).join(' ') };
          refused.push(`${n.name}: ${msg}`);
        }
        saveVagrantResources(paths, res);
      });
    }
    if (refused.length) progress.warn(`the fast paths did not attach; the lab is up for runs without them:\n${refused.join('\n')}`);
    const drift = await checkKernelPins(plan, ctx, this);
    if (drift.length) throw new LabError(`kernel drift: ${drift.map((c) => `${c.node} runs ${c.actual}, expected ${c.expected}`).join('; ')}`, 'KERNEL_DRIFT');
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
      await sweepLibvirt(plan, ctx, this.env);
    });
    await stopVagrantDaemons(plan, ctx);
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

  /** Nothing to give back: the VMs and their core_pattern belong to the lab. */
  async restoreCores(): Promise<void> {}

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

/**
 * For the bench: the VMs whose kernel drifted from the pin (empty = all
 * good). A bench must refuse to run when this returns anything.
 */
export async function checkKernelPins(plan: Plan, ctx: ProviderContext, provider: VmShell = new VagrantProvider()): Promise<KernelCheck[]> {
  return (await kernelChecks(plan, ctx, provider)).filter((c) => !c.ok);
}
