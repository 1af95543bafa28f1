/**
 * The hosts provider: Linux machines that already exist (a bare-metal
 * testbed such as CloudLab, or any reachable machines), driven over SSH
 * (ssh2) from an inventory. It creates nothing but what it records and
 * undoes on `down`: the lab's files and binaries where they were missing or
 * different, a lab address the inventory asked for, the NIC tuning Electrode
 * used (MTU, interrupt coalescing off, one queue, irqbalance off, IRQ
 * affinity), each with the setting it replaced.
 *
 * Layout on each machine mirrors this host: binaries and the lab's files sit
 * at the same absolute paths (as in the VMs), so the command lines of
 * src/core/argv.ts run unchanged.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { loaderArgv } from '../../core/argv.js';
import { hostArtifacts, loaderPath } from '../../edges/build.js';
import { Diagnostic, DiagnosticsError, LabError } from '../../core/diagnostics.js';
import { LabPaths } from '../../edges/paths.js';
import { Plan, PlanNode, replicas } from '../../core/plan.js';
import { RunOptions, RunResult, shellQuote } from '../../edges/runner.js';
import { SshSession, sudoCommand } from '../../edges/ssh.js';
import { loadProcessRecords, loadResources, loadState, removeProcessRecord, saveProcessRecord, saveResources } from '../../edges/state.js';
import { collectRemote, coresPatternScript, remoteAlive, remoteCopyOut, remoteFindCore, remoteSignal, remoteSpawn, remoteStop, remoteUdpBound } from '../remote.js';
import { attachedBpfOn, nodeStatus } from '../status.js';
import { AdoptAbility, CoresAbility, FaultAbility, FoundCore, KernelDrift, KernelPinAbility, Netem, NodeFaults, NodeStatus, ProcessRecord, Provider, ProviderContext, netemArgs } from '../provider.js';
import { adoptHosts } from './adopt.js';
import { Inventory, hostFactsToNodes } from './inventory.js';
import { labInventory, preflight } from './preflight.js';
import { SavedTuning, TuningFacts, msiIrqsArgv, nicIrqs, parseMsiIrqs, planTuning, readAffinityArgv, tuningRestore, tuningTarget } from './tuning.js';

/** What `up` changed on one machine, to be undone by `down`. */
interface HostRecord {
  /** Files electrode-lab wrote (absent or different before), removed by down. */
  wrote: string[];
  /** Folders it created, removed by down when empty. */
  madeDirs: string[];
  /** The lab address it added (ipSource inventory). */
  addedIp?: string;
  tuning?: SavedTuning;
  /** `uname -r` at up: a bench refuses a machine that booted another kernel since. */
  kernel?: string;
  /** The core_pattern a bench replaced, until it is restored. */
  corePattern?: string;
}

interface HostsResources {
  hosts: Record<string, HostRecord>;
}

function expandHome(p: string | undefined): string | undefined {
  return p?.startsWith('~/') ? join(homedir(), p.slice(2)) : p;
}

export class HostsProvider implements Provider, FaultAbility, AdoptAbility, CoresAbility, KernelPinAbility {
  readonly name = 'hosts' as const;
  /** Real machines: a replica starts in well under a second; ssh round trips add some. */
  readonly startTimeoutMs = 30_000;
  readonly sharedKernel = false;
  /** Real NICs: native XDP sees the driver's buffers (the paper's setting). */
  readonly ingressHook = 'xdp' as const;
  private sessions = new Map<string, Promise<SshSession>>();


  // ------------------------------------------------------------ inventory and adoption

  /** The lab's inventory: the file, or the CloudLab manifest read as one. */
  inventory(plan: Plan): Inventory {
    return labInventory(plan);
  }

  async probe(): Promise<Diagnostic[]> {
    // nothing is needed on this host but ssh2 (a dependency); the machines are checked in adoptPlan
    return [];
  }

  /** Reads every machine over SSH (NIC, address, MTU, driver, kernel, tools) and adopts what they are. */
  async adoptPlan(plan: Plan, ctx: ProviderContext): Promise<Plan> {
    const inv = this.inventory(plan);
    if (ctx.runner.dryRun) return plan;
    const facts = await preflight(inv, (name, ssh) => this.connect(name, ssh, ctx.paths));
    const adopted = hostFactsToNodes(inv, facts);
    if (!adopted.nodes || !adopted.network) throw new DiagnosticsError(adopted.diagnostics, 'preflight');
    const r = adoptHosts(plan, adopted.nodes, adopted.network);
    if (!r.plan) throw new DiagnosticsError(r.diagnostics, 'preflight');
    return r.plan;
  }

  // ------------------------------------------------------------ sessions

  private async connect(name: string, ssh: NonNullable<PlanNode['ssh']>, paths: LabPaths): Promise<SshSession> {
    const key = expandHome(ssh.key) ?? join(homedir(), '.ssh', 'id_ed25519');
    if (!existsSync(key)) throw new LabError(`${name}: ssh key ${key} not found; set ssh.key in the inventory`, 'HOST_NO_KEY');
    const logDir = paths.nodeLogDir(name);
    const logFile = existsSync(dirname(logDir)) ? join(logDir, 'ssh.log') : undefined;
    if (logFile) paths.ensureDirs([name]);
    return SshSession.connect({ name, host: ssh.host, port: ssh.port, user: ssh.user, identityFile: key, ...(ssh.jumpHost ? { jump: ssh.jumpHost } : {}) }, { ...(logFile ? { logFile } : {}), readyTimeoutMs: 20_000 });
  }

  private session(plan: Plan, node: PlanNode, ctx: ProviderContext): Promise<SshSession> {
    let s = this.sessions.get(node.name);
    if (!s) {
      if (!node.ssh) return Promise.reject(new LabError(`${node.name}: the plan has no ssh address; is lab '${plan.lab}' a hosts lab that is up?`, 'HOST_NO_SSH'));
      s = this.connect(node.name, node.ssh, ctx.paths);
      s.catch(() => this.sessions.delete(node.name));
      this.sessions.set(node.name, s);
    }
    return s;
  }

  closeSessions(): void {
    for (const [name, s] of this.sessions) {
      this.sessions.delete(name);
      s.then((x) => x.close()).catch(() => undefined);
    }
  }

  async exec(plan: Plan, node: PlanNode, argv: string[], ctx: ProviderContext, opts: RunOptions = {}): Promise<RunResult> {
    const user = node.ssh?.user;
    if (ctx.runner.dryRun) return ctx.runner.run(['ssh', `${user}@${node.hostname}`, sudoCommand(argv, user)], opts);
    const s = await this.session(plan, node, ctx);
    return s.exec(sudoCommand(argv, user), { check: opts.check, input: opts.input, timeoutMs: opts.timeoutMs, echo: opts.stdio === 'inherit', bulkStdout: opts.bulkStdout });
  }

  private sh(plan: Plan, node: PlanNode, ctx: ProviderContext) {
    return (script: string, opts: RunOptions = {}) => this.exec(plan, node, ['sh', '-c', script], ctx, opts);
  }

  // ------------------------------------------------------------ resources

  private load(paths: LabPaths): HostsResources {
    return { hosts: {}, ...loadResources<HostsResources>(paths) } as HostsResources;
  }

  private save(paths: LabPaths, r: HostsResources): void {
    if (loadState(paths)) saveResources(paths, r);
  }

  // ------------------------------------------------------------ up / down

  async up(plan: Plan, ctx: ProviderContext): Promise<void> {
    const { paths, progress, runner } = ctx;
    const inv = this.inventory(plan);
    const res = this.load(paths);
    const missing = hostArtifacts().filter((f) => !existsSync(f));
    if (missing.length && !runner.dryRun) throw new LabError(`${missing.join(', ')} missing; run \`npm run build\` first (the machines get this host's build)`, 'HOST_BUILD_MISSING');
    for (const n of plan.nodes) {
      await progress.step(`${n.name} (${n.ssh?.user}@${n.hostname}): binaries, lab files, bpffs${n.ipSource === 'inventory' ? `, address ${n.ip}/${plan.network.prefix}` : ''}`, async () => {
        const rec: HostRecord = res.hosts[n.name] ?? { wrote: [], madeDirs: [] };
        res.hosts[n.name] = rec;
        const run = (argv: string[], o: RunOptions = {}) => this.exec(plan, n, argv, ctx, o);
        if (runner.dryRun) return;
        rec.kernel = (await run(['uname', '-r'])).stdout.trim();
        for (const f of [...hostArtifacts(), paths.replicaConfigFile, paths.peerTableFile]) await this.put(plan, n, ctx, f, rec);
        for (const d of [paths.nodeLogDir(n.name), paths.pidsDir]) {
          if ((await run(['test', '-d', d], { check: false })).exitCode !== 0) {
            await run(['mkdir', '-p', d]);
            rec.madeDirs.push(d);
          }
        }
        await run(['sh', '-c', `mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; mkdir -p ${shellQuote([n.pinDir])}`]);
        if (n.ipSource === 'inventory' && !rec.addedIp) {
          const cidr = `${n.ip}/${plan.network.prefix}`;
          await run(['ip', 'addr', 'add', cidr, 'dev', n.ifname]);
          await run(['ip', 'link', 'set', n.ifname, 'up']);
          rec.addedIp = cidr;
        }
        this.save(paths, res);
      });
    }
    for (const n of plan.nodes) {
      await progress.step(`${n.name}: NIC tuning of ${n.ifname} (Electrode's: MTU, coalescing off, ${inv.tuning.queues} queue(s), irqbalance ${inv.tuning.irqbalance}, IRQs ${inv.tuning.irqAffinity})`, async () => {
        if (runner.dryRun) return;
        const rec = res.hosts[n.name]!;
        if (rec.tuning) return; // an earlier up of this lab tuned it already
        const facts = await this.tuningFacts(plan, n, ctx);
        const t = planTuning({ ...tuningTarget(inv), mtu: inv.mtu ?? 'keep' }, facts);
        if (t.diagnostics.length) throw new DiagnosticsError(t.diagnostics, `${n.name} tuning`);
        for (const note of t.notes) progress.info(`${n.name}: ${note}`);
        // record first: a half-applied tuning is still undone by down
        rec.tuning = t.saved;
        this.save(paths, res);
        for (const argv of t.apply) await this.exec(plan, n, argv, ctx);
      });
    }
    this.closeSessions();
  }

  /** Copies a file to the same path on the node unless it is there already with the same content. */
  private async put(plan: Plan, n: PlanNode, ctx: ProviderContext, file: string, rec: HostRecord): Promise<void> {
    const local = createHash('sha256').update(readFileSync(file)).digest('hex');
    const there = (await this.exec(plan, n, ['sh', '-c', `sha256sum ${shellQuote([file])} 2>/dev/null | cut -d' ' -f1`], ctx, { check: false })).stdout.trim();
    if (there === local) return;
    const s = await this.session(plan, n, ctx);
    const tmp = `/tmp/electrode-lab-${process.pid}-${local.slice(0, 12)}`;
    await s.putFile(file, tmp, 0o755);
    await this.exec(plan, n, ['install', '-D', '-m', file.endsWith('.config') || file.endsWith('.table') ? '0644' : '0755', tmp, file], ctx);
    await this.exec(plan, n, ['rm', '-f', tmp], ctx);
    if (!rec.wrote.includes(file)) rec.wrote.push(file);
  }

  private async tuningFacts(plan: Plan, n: PlanNode, ctx: ProviderContext): Promise<TuningFacts> {
    const run = async (argv: string[]) => this.exec(plan, n, argv, ctx, { check: false });
    const ok = (r: RunResult) => (r.exitCode === 0 ? r.stdout : undefined);
    const bus = /^bus-info:\s*(\S+)/m.exec((await run(['ethtool', '-i', n.ifname])).stdout)?.[1];
    const msi = ok(await run(msiIrqsArgv(n.ifname)));
    const interrupts = (await run(['cat', '/proc/interrupts'])).stdout;
    const irqs = nicIrqs(interrupts, { ifname: n.ifname, ...(bus ? { busInfo: bus } : {}), ...(msi && parseMsiIrqs(msi).length ? { msiIrqs: parseMsiIrqs(msi) } : {}) }).map((l) => l.irq);
    const facts: TuningFacts = {
      ifname: n.ifname,
      link: (await run(['ip', '-j', 'link', 'show', n.ifname])).stdout,
      irqbalanceExit: (await run(['pgrep', '-x', 'irqbalance'])).exitCode ?? 2,
      interrupts,
      ...(bus ? { busInfo: bus } : {}),
      ...(msi !== undefined ? { msiIrqs: msi } : {}),
    };
    const c = ok(await run(['ethtool', '-c', n.ifname]));
    if (c !== undefined) facts.coalesce = c;
    const l = ok(await run(['ethtool', '-l', n.ifname]));
    if (l !== undefined) facts.channels = l;
    if (irqs.length) facts.affinity = (await run(readAffinityArgv(irqs))).stdout;
    return facts;
  }

  async down(plan: Plan, ctx: ProviderContext): Promise<void> {
    const { paths, progress, runner } = ctx;
    const res = this.load(paths);
    const records = loadProcessRecords(paths);
    const problems: string[] = [];
    for (const n of plan.nodes) {
      await progress.step(`${n.name} (${n.hostname}): stop processes, detach, restore NIC settings, remove what up wrote`, async () => {
        const rec = res.hosts[n.name];
        try {
          for (const p of records.filter((r) => r.node === n.name)) await this.stop(plan, p, ctx);
          if (n.role === 'replica' && existsSync(loaderPath())) await this.exec(plan, n, loaderArgv.detach(loaderPath(), n.pinDir, ['--ifname', n.ifname]), ctx, { check: false });
          await this.exec(plan, n, ['rm', '-rf', '--one-file-system', plan.bpf.pinRoot], ctx, { check: false });
          if (rec?.corePattern !== undefined) {
            await this.exec(plan, n, ['sh', '-c', `echo ${shellQuote([rec.corePattern])} > /proc/sys/kernel/core_pattern`], ctx, { check: false });
            delete rec.corePattern;
          }
          if (rec?.tuning) {
            for (const argv of tuningRestore(rec.tuning)) {
              const r = await this.exec(plan, n, argv, ctx, { check: false });
              if (r.exitCode !== 0) problems.push(`${n.name}: \`${argv.join(' ')}\` failed: ${r.stderr.trim()}`);
            }
            delete rec.tuning;
          }
          if (rec?.addedIp) {
            await this.exec(plan, n, ['ip', 'addr', 'del', rec.addedIp, 'dev', n.ifname], ctx, { check: false });
            delete rec.addedIp;
          }
          for (const f of rec?.wrote ?? []) await this.exec(plan, n, ['rm', '-f', f], ctx, { check: false });
          for (const d of [...(rec?.madeDirs ?? [])].reverse()) await this.exec(plan, n, ['rmdir', '--ignore-fail-on-non-empty', d], ctx, { check: false });
          if (rec) {
            rec.wrote = [];
            rec.madeDirs = [];
          }
        } catch (e) {
          // an unreachable machine keeps its record: a later down retries
          problems.push(`${n.name}: ${(e as Error).message.split('\n')[0]}`);
        }
        if (!runner.dryRun) this.save(paths, res);
      });
    }
    this.closeSessions();
    if (problems.length) throw new LabError(`down could not undo everything:\n${problems.join('\n')}\nrun \`electrode-lab down --name ${plan.lab}\` again when the machines are reachable`, 'HOSTS_DOWN');
  }

  // ------------------------------------------------------------ processes

  async spawn(plan: Plan, node: PlanNode, name: string, argv: string[], ctx: ProviderContext): Promise<ProcessRecord> {
    const rec = await remoteSpawn(this.sh(plan, node, ctx), node, name, argv, ctx.paths.processLog(node.name, name), ctx.runner.dryRun);
    if (!ctx.runner.dryRun) saveProcessRecord(ctx.paths, rec);
    return rec;
  }

  async alive(plan: Plan, rec: ProcessRecord, ctx: ProviderContext): Promise<boolean> {
    const node = plan.nodes.find((n) => n.name === rec.node);
    return node ? remoteAlive(this.sh(plan, node, ctx), rec) : false;
  }

  async udpBound(plan: Plan, node: PlanNode, port: number, _rec: ProcessRecord, ctx: ProviderContext): Promise<boolean> {
    return remoteUdpBound(this.sh(plan, node, ctx), port);
  }

  async stop(plan: Plan, rec: ProcessRecord, ctx: ProviderContext): Promise<void> {
    const node = plan.nodes.find((n) => n.name === rec.node);
    if (node) await remoteStop(this.sh(plan, node, ctx), rec);
    if (!ctx.runner.dryRun) removeProcessRecord(ctx.paths, rec);
  }

  async copyOut(plan: Plan, node: PlanNode, remote: string, local: string, ctx: ProviderContext, maxBytes?: number): Promise<boolean> {
    return remoteCopyOut(this.sh(plan, node, ctx), remote, local, ctx.runner.dryRun, maxBytes);
  }

  // ------------------------------------------------------------ status and state

  async status(plan: Plan, ctx: ProviderContext): Promise<NodeStatus[]> {
    const records = loadProcessRecords(ctx.paths);
    const res = this.load(ctx.paths);
    const out: NodeStatus[] = [];
    for (const n of plan.nodes) {
      try {
        const { bpf } = await attachedBpfOn((argv) => this.exec(plan, n, argv, ctx, { check: false }), n.ifname);
        const procs: NodeStatus['processes'] = [];
        for (const p of records.filter((r) => r.node === n.name)) procs.push({ name: p.name, pid: p.pid, alive: await this.alive(plan, p, ctx) });
        const kernel = (await this.exec(plan, n, ['uname', '-r'], ctx, { check: false })).stdout.trim();
        const was = res.hosts[n.name]?.kernel;
        const detail = `${n.hostname}, lab NIC ${n.ifname}${was && kernel && was !== kernel ? `, kernel CHANGED from ${was} since up (bench refuses it)` : ''}${res.hosts[n.name]?.tuning ? ', NIC tuned (down restores)' : ''}`;
        out.push(nodeStatus(n, { state: 'up', processes: procs, bpf, ...(kernel ? { kernel } : {}), detail }));
      } catch (e) {
        out.push(nodeStatus(n, { state: 'unknown', processes: [], bpf: [], detail: `unreachable: ${(e as Error).message.split('\n')[0]}` }));
      }
    }
    this.closeSessions();
    return out;
  }

  async collect(plan: Plan, node: PlanNode, destDir: string, ctx: ProviderContext): Promise<void> {
    await collectRemote((argv, o) => this.exec(plan, node, argv, ctx, o), destDir, node.ifname);
  }

  // ------------------------------------------------------------ hooks

  /** While a bench runs, each machine's kernel writes cores where findCore looks; the old pattern is recorded. */
  async prepareCores(plan: Plan, ctx: ProviderContext): Promise<void> {
    const res = this.load(ctx.paths);
    for (const n of replicas(plan)) {
      const rec = (res.hosts[n.name] ??= { wrote: [], madeDirs: [] });
      if (rec.corePattern === undefined) rec.corePattern = (await this.exec(plan, n, ['cat', '/proc/sys/kernel/core_pattern'], ctx, { check: false })).stdout.trim();
      this.save(ctx.paths, res);
      const r = await this.exec(plan, n, ['sh', '-c', coresPatternScript()], ctx, { check: false });
      if (r.exitCode !== 0) ctx.progress.warn(`${n.name}: could not set its core_pattern (${r.stderr.trim()}); crashes there leave no core`);
    }
  }

  /** The machines are not the lab's: their core_pattern goes back after the bench (down does it too). */
  async restoreCores(plan: Plan, ctx: ProviderContext): Promise<void> {
    const res = this.load(ctx.paths);
    // last saved, first restored: machines that share a kernel (a test rig) then end on the first pattern
    for (const n of [...replicas(plan)].reverse()) {
      const rec = res.hosts[n.name];
      if (rec?.corePattern === undefined) continue;
      const r = await this.exec(plan, n, ['sh', '-c', `echo ${shellQuote([rec.corePattern])} > /proc/sys/kernel/core_pattern`], ctx, { check: false });
      if (r.exitCode !== 0) ctx.progress.warn(`${n.name}: could not restore its core_pattern ${JSON.stringify(rec.corePattern)}: ${r.stderr.trim()}`);
      else ctx.progress.info(`${n.name}: core_pattern back to ${JSON.stringify(rec.corePattern)}`);
      delete rec.corePattern;
    }
    this.save(ctx.paths, res);
  }

  async findCore(plan: Plan, node: PlanNode, rec: ProcessRecord, binary: string, ctx: ProviderContext, hostCoresDir: string): Promise<FoundCore> {
    return remoteFindCore((argv, o) => this.exec(plan, node, argv, ctx, o), node, rec, binary, hostCoresDir);
  }

  /** Machines that booted another kernel since `up` (the lab's figures would not be comparable). */
  async kernelDrift(plan: Plan, ctx: ProviderContext): Promise<KernelDrift[]> {
    const res = this.load(ctx.paths);
    const out: KernelDrift[] = [];
    for (const n of plan.nodes) {
      const was = res.hosts[n.name]?.kernel;
      if (!was) continue;
      const now = (await this.exec(plan, n, ['uname', '-r'], ctx, { check: false })).stdout.trim();
      if (now && now !== was) out.push({ node: n.name, expected: was, actual: now });
    }
    return out;
  }

  /** Faults on real machines: processes by signal; a node's lab NIC down/up or impaired (refused when SSH goes over that NIC: the lab would lose the machine). */
  readonly faults: NodeFaults = {
    signal: async (plan, rec, sig, ctx) => {
      const node = plan.nodes.find((n) => n.name === rec.node);
      if (node) await remoteSignal(this.sh(plan, node, ctx), rec, sig);
    },
    isolate: async (plan, node, on, ctx) => {
      if (node.ssh?.host === node.ip) throw new LabError(`${node.name}: the inventory reaches it over its lab NIC (${node.ip}); cutting that NIC would cut the SSH session: give it a control-network address`, 'HOSTS_NO_CONTROL_NET');
      await this.exec(plan, node, ['ip', 'link', 'set', node.ifname, on ? 'down' : 'up'], ctx);
    },
    netem: async (plan, node, spec: Netem | undefined, ctx) => {
      if (spec) await this.exec(plan, node, ['tc', 'qdisc', 'replace', 'dev', node.ifname, 'root', 'netem', ...netemArgs(spec)], ctx);
      else await this.exec(plan, node, ['tc', 'qdisc', 'del', 'dev', node.ifname, 'root'], ctx, { check: false });
    },
    canReorder: async (plan, ctx) => {
      const n = plan.nodes[0]!;
      return (await this.exec(plan, n, ['sh', '-c', 'modprobe sch_netem 2>/dev/null; tc qdisc add dev lo root netem delay 1ms && tc qdisc del dev lo root'], ctx, { check: false })).exitCode === 0;
    },
  };
}
