/**
 * The netns provider: one network namespace per node plus one "switch"
 * namespace holding the bridge. Nothing is put on the root namespace: each
 * veth pair is created inside the switch namespace with its peer placed
 * directly in the node's namespace.
 *
 * Commands run inside a node with `nsenter --net=/run/netns/<ns>`, NOT
 * `ip netns exec`: the latter remounts /sys and hides the bpffs pins.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Diagnostic, LabError } from '../core/diagnostics.js';
import { loaderArgv } from '../core/argv.js';
import { attachedBpfOn, nodeStatus, parseAttachedBpf } from './status.js';
import { BPFFS_ROOT, Plan, PlanNode, labNamespacePrefix } from '../core/plan.js';
import { missingTools, NETNS_TOOLS, rootDiagnostic } from '../edges/probe.js';
import { RunOptions, RunResult, Runner } from '../edges/runner.js';
import { procStartTime, processAlive } from '../edges/proc.js';
import { loaderPath } from '../edges/build.js';
import { loadProcessRecords, removeProcessRecord, saveProcessRecord } from '../edges/state.js';
import { AttachHooksAbility, FaultAbility, Netem, NodeMountsAbility, NodeFaults, NodeStatus, ProcessRecord, Provider, ProviderContext, netemArgs } from './provider.js';
import { destroyNodeMounts, netnsNodeMounts } from './netnsMounts.js';

export const NETNS_RUN_DIR = '/run/netns';
const STOP_GRACE_MS = 5000;
const KILL_WAIT_MS = 3000;

export function nsenterArgv(ns: string, argv: string[]): string[] {
  return ['nsenter', `--net=${NETNS_RUN_DIR}/${ns}`, '--', ...argv];
}

/** Matches exactly this lab's namespaces (lab 'a' must not match lab 'a-2'). */
export function labNamespaceRegex(lab: string): RegExp {
  const esc = labNamespacePrefix(lab).replace(/[-]/g, '\\-');
  return new RegExp(`^${esc}(sw|replica\\d+|client\\d+)$`);
}

/** `ip netns list` output -> names ("name (id: 3)" or "name"). */
export function parseNetnsList(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}



/** Is a UDP socket bound to `port` in the network namespace of pid? (/proc/<pid>/net/udp is per namespace.) */
export function udpPortBound(pid: number, port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  try {
    const text = readFileSync(`/proc/${pid}/net/udp`, 'utf8');
    return text.split('\n').some((l) => l.trim().split(/\s+/)[1]?.endsWith(`:${hexPort}`));
  } catch {
    return false;
  }
}

/** True while the PID still names the process we recorded (not a recycled PID). */
export function isSameProcess(rec: Pick<ProcessRecord, 'pid' | 'startTime'>): boolean {
  if (!processAlive(rec.pid)) return false;
  return rec.startTime === undefined || procStartTime(rec.pid) === rec.startTime;
}

/** Polls /proc until every pid is gone (or a zombie); returns the ones still alive at the deadline. */
export async function waitForExit(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(processAlive);
  while (alive.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    alive = alive.filter(processAlive);
  }
  return alive;
}

/** SIGTERM, the grace period, then SIGKILL for whatever is left (this host's processes). */
async function terminate(r: Runner, pids: number[], onKill?: (left: number[]) => void): Promise<void> {
  await r.run(['kill', '-TERM', ...pids.map(String)], { check: false });
  const left = r.dryRun ? [] : await waitForExit(pids, STOP_GRACE_MS);
  if (!left.length) return;
  onKill?.(left);
  await r.run(['kill', '-KILL', ...left.map(String)], { check: false });
  await waitForExit(left, KILL_WAIT_MS);
}

function bpffsMounted(): boolean {
  try {
    return readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .some((l) => {
        const f = l.split(' ');
        return f[1] === '/sys/fs/bpf' && f[2] === 'bpf';
      });
  } catch {
    return false;
  }
}

export { parseAttachedBpf };

/**
 * Faults on a netns lab: processes are ours on this host; a node is cut off
 * and impaired at its switch-side veth (the traffic TOWARDS it: every frame,
 * including the fast reply's XDP_TX and the broadcast's clones, crosses
 * exactly one such port), and the switch's ports are regrouped for a split.
 * Loss and duplication come from our own TC program (el-loader impair): the
 * host kernel may have no sch_netem (ours have none). Reordering needs netem.
 */
class NetnsFaults implements NodeFaults {
  private impair(plan: Plan, node: PlanNode, rates: Netem | undefined): string[] {
    return nsenterArgv(plan.network.switchNs, loaderArgv.impair(loaderPath(), `${plan.bpf.pinRoot}/sw`, node.switchIf, rates));
  }

  async signal(_plan: Plan, rec: ProcessRecord, sig: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT', ctx: ProviderContext): Promise<void> {
    if (!ctx.runner.dryRun && !isSameProcess(rec)) return;
    await ctx.runner.run(['kill', `-${sig.slice(3)}`, String(rec.pid)], { check: false });
  }

  async isolate(plan: Plan, node: PlanNode, on: boolean, ctx: ProviderContext): Promise<void> {
    await ctx.runner.run(['ip', '-n', plan.network.switchNs, 'link', 'set', node.switchIf, on ? 'down' : 'up']);
  }

  async netem(plan: Plan, node: PlanNode, spec: Netem | undefined, ctx: ProviderContext): Promise<void> {
    const dev = ['dev', node.switchIf, 'root'];
    if (!spec) {
      await ctx.runner.run(this.impair(plan, node, undefined), { check: false });
      await ctx.runner.run(['tc', '-n', plan.network.switchNs, 'qdisc', 'del', ...dev], { check: false });
      return;
    }
    if (spec.lossPercent || spec.duplicatePercent) {
      await ctx.runner.run(this.impair(plan, node, spec));
    }
    if (spec.reorderPercent) await ctx.runner.run(['tc', '-n', plan.network.switchNs, 'qdisc', 'replace', ...dev, 'netem', ...netemArgs({ reorderPercent: spec.reorderPercent })]);
  }

  async canReorder(plan: Plan, ctx: ProviderContext): Promise<boolean> {
    const port = plan.nodes[0]!.switchIf;
    const r = await ctx.runner.run(['tc', '-n', plan.network.switchNs, 'qdisc', 'add', 'dev', port, 'root', 'netem', 'delay', '1ms'], { check: false });
    if (r.exitCode === 0) await ctx.runner.run(['tc', '-n', plan.network.switchNs, 'qdisc', 'del', 'dev', port, 'root'], { check: false });
    return r.exitCode === 0;
  }

  /** Groups after the first move to bridges of their own (br-split1...); undefined puts every port back on the lab bridge. */
  async split(plan: Plan, groups: PlanNode[][] | undefined, ctx: ProviderContext): Promise<void> {
    const sw = plan.network.switchNs;
    const r = ctx.runner;
    if (!groups) {
      for (const n of plan.nodes) await r.run(['ip', '-n', sw, 'link', 'set', n.switchIf, 'master', plan.network.bridge], { check: false });
      for (let i = 1; i < plan.nodes.length; i++) await r.run(['ip', '-n', sw, 'link', 'del', `br-split${i}`], { check: false });
      return;
    }
    for (let g = 1; g < groups.length; g++) {
      const br = `br-split${g}`;
      await r.run(['ip', '-n', sw, 'link', 'add', 'name', br, 'mtu', String(plan.network.mtu), 'type', 'bridge']);
      await r.run(['ip', '-n', sw, 'link', 'set', br, 'up']);
      for (const n of groups[g]!) await r.run(['ip', '-n', sw, 'link', 'set', n.switchIf, 'master', br]);
    }
  }
}

export class NetnsProvider implements Provider, FaultAbility, AttachHooksAbility, NodeMountsAbility {
  readonly name = 'netns' as const;
  readonly faults: NodeFaults = new NetnsFaults();
  readonly nodeMounts = netnsNodeMounts;

  async probe(ctx: ProviderContext): Promise<Diagnostic[]> {
    const d = [...rootDiagnostic('the netns provider'), ...missingTools(NETNS_TOOLS)];
    if (d.length) return d;
    // leftovers of a crashed run under this name would make `ip netns add` fail half-way
    const leftovers = await this.labNamespaces(ctx.paths.lab, ctx.runner);
    if (leftovers.length && !ctx.runner.dryRun) {
      d.push({
        code: 'LAB_LEFTOVERS',
        subject: `name=${ctx.paths.lab}`,
        message: `namespaces ${leftovers.join(', ')} are left from an earlier run`,
        hint: `run \`electrode-lab down --name ${ctx.paths.lab}\` first`,
      });
    }
    return d;
  }

  async up(plan: Plan, ctx: ProviderContext): Promise<void> {
    const { runner: r, progress } = ctx;
    const { switchNs: sw, bridge, mtu, prefix } = plan.network;
    const ip = (...a: string[]) => r.run(['ip', ...a]);
    const ipv6Off = (ns: string) => r.run(nsenterArgv(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']));

    await progress.step(`bpffs and pin folders under ${plan.bpf.pinRoot}`, async () => {
      if (!bpffsMounted()) await r.run(['mount', '-t', 'bpf', 'bpf', '/sys/fs/bpf']);
      await r.run(['mkdir', '-p', ...plan.nodes.map((n) => n.pinDir)]);
    });
    await progress.step(`switch namespace ${sw} with bridge ${bridge} (mtu ${mtu})`, async () => {
      await ip('netns', 'add', sw);
      // IPv6 off: no router solicitations or DAD chatter reaching the XDP programs
      await ipv6Off(sw);
      await ip('-n', sw, 'link', 'set', 'lo', 'up');
      await ip('-n', sw, 'link', 'add', 'name', bridge, 'mtu', String(mtu), 'type', 'bridge');
      await ip('-n', sw, 'link', 'set', bridge, 'up');
      // a lab switch has no firewall: where the host loaded br_netfilter, bridged frames would
      // go through iptables in this namespace too (10-15 % of a 7-replica lab's throughput here).
      // Per-namespace sysctls (Linux 5.3+); absent without br_netfilter, so failure is fine
      await r.run(nsenterArgv(sw, ['sysctl', '-q', '-w', 'net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0', 'net.bridge.bridge-nf-call-arptables=0']), { check: false });
    });
    for (const n of plan.nodes) {
      await progress.step(`${n.name}: namespace ${n.netns}, ${n.ifname} ${n.ip}/${prefix} ${n.mac}`, async () => {
        await ip('netns', 'add', n.netns);
        await ipv6Off(n.netns);
        await ip('-n', sw, 'link', 'add', n.switchIf, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', n.ifname, 'mtu', String(mtu), 'netns', n.netns);
        await ip('-n', sw, 'link', 'set', n.switchIf, 'master', bridge, 'up');
        // frames a node's native XDP sends with XDP_TX land on this peer, and
        // veth accepts them only when the peer runs NAPI: `attach --hook xdp`
        // puts a pass-through XDP program here (switchPeerPass in bpf.ts). GRO
        // would turn NAPI on for every frame (and did not suffice on 6.18)
        await ip('-n', n.netns, 'link', 'set', 'lo', 'up');
        await ip('-n', n.netns, 'link', 'set', n.ifname, 'address', n.mac);
        await ip('-n', n.netns, 'addr', 'add', `${n.ip}/${prefix}`, 'brd', '+', 'dev', n.ifname);
        await ip('-n', n.netns, 'link', 'set', n.ifname, 'up');
      });
    }
  }

  /** This lab's namespaces that exist now (by exact name pattern, so a partial state folder does not matter). */
  async labNamespaces(lab: string, runner: Runner): Promise<string[]> {
    const re = labNamespaceRegex(lab);
    let names: string[];
    if (runner.dryRun) {
      names = existsSync(NETNS_RUN_DIR) ? readdirSync(NETNS_RUN_DIR) : [];
    } else {
      const res = await runner.run(['ip', 'netns', 'list'], { check: false });
      names = parseNetnsList(res.stdout);
    }
    return names.filter((n) => re.test(n)).sort();
  }

  async down(plan: Plan, ctx: ProviderContext): Promise<void> {
    const { runner: r, progress, paths } = ctx;
    const records = loadProcessRecords(paths);
    if (records.length) {
      await progress.step(`stopping ${records.length} recorded process(es)`, async () => {
        for (const rec of records) await this.stop(plan, rec, ctx);
      });
    }
    const sw = plan.network.switchNs;
    const found = await this.labNamespaces(plan.lab, r);
    const planned = [...plan.nodes.map((n) => n.netns), sw];
    // nodes first, the switch namespace last
    const all = [...new Set([...found, ...planned.filter((ns) => r.dryRun || found.includes(ns))])].sort((a, b) => (a === sw ? 1 : b === sw ? -1 : a.localeCompare(b)));
    if (all.length) {
      await progress.step(`killing what still runs inside ${all.length} namespace(s)`, async () => {
        for (const ns of all) await this.killNamespaceProcesses(ns, r);
      });
      await progress.step(`deleting namespaces ${all.join(' ')}`, async () => {
        for (const ns of all) {
          const res = await r.run(['ip', 'netns', 'del', ns], { check: false });
          if (res.exitCode !== 0 && !/No such file|Invalid argument/.test(res.stderr)) {
            progress.warn(`ip netns del ${ns}: ${res.stderr.trim()}`);
          }
        }
      });
    }
    // the nodes' own mount namespaces (netnsMounts.ts, for upstream trees): their processes are gone now
    await destroyNodeMounts(r, plan.lab);
    const pinRoot = plan.bpf.pinRoot;
    if (pinRoot.startsWith(`${BPFFS_ROOT}/`) && (r.dryRun || existsSync(pinRoot))) {
      await progress.step(`removing pins ${pinRoot}`, async () => {
        await r.run(['rm', '-rf', '--one-file-system', pinRoot]);
        // the shared parent goes when the last lab is gone
        await r.run(['rmdir', '--ignore-fail-on-non-empty', BPFFS_ROOT], { check: false });
      });
    }
  }

  private async killNamespaceProcesses(ns: string, r: Runner): Promise<void> {
    const pidsOf = async () =>
      (await r.run(['ip', 'netns', 'pids', ns], { check: false })).stdout
        .split(/\s+/)
        .filter((p) => /^\d+$/.test(p))
        .map(Number)
        .filter((p) => p !== process.pid);
    const pids = await pidsOf();
    if (pids.length) await terminate(r, pids);
  }

  async exec(plan: Plan, node: PlanNode, argv: string[], ctx: ProviderContext, opts?: RunOptions): Promise<RunResult> {
    return ctx.runner.run(nsenterArgv(node.netns, argv), opts);
  }

  async spawn(plan: Plan, node: PlanNode, name: string, argv: string[], ctx: ProviderContext): Promise<ProcessRecord> {
    const { paths, runner } = ctx;
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`process name '${name}' must be letters, digits, _ . -`);
    paths.ensureDirs([node.name]);
    const logFile = paths.processLog(node.name, name);
    // nsenter without --fork execs the program: the PID we get is the program's
    const pid = await runner.spawnDetached(nsenterArgv(node.netns, argv), { logFile });
    const rec: ProcessRecord = { node: node.name, name, pid, argv, logFile, startTime: runner.dryRun ? undefined : procStartTime(pid) };
    if (!runner.dryRun) saveProcessRecord(paths, rec);
    return rec;
  }

  readonly startTimeoutMs = 20_000;
  readonly sharedKernel = true;
  readonly ingressHook = 'tc' as const;

  /**
   * Native XDP_TX from a node's veth reaches the switch only when the
   * switch-side veth end runs NAPI; a pass-through XDP program there is what
   * makes it do so (GRO alone did not, on kernel 6.18 here). TC's redirect
   * needs none, so an earlier one goes.
   */
  async afterAttach(plan: Plan, node: PlanNode, ctx: ProviderContext, hook: 'xdp' | 'tc'): Promise<void> {
    await this.peerPass(plan, node, ctx, hook === 'xdp');
  }

  async afterDetach(plan: Plan, node: PlanNode, ctx: ProviderContext): Promise<void> {
    await this.peerPass(plan, node, ctx, false);
  }

  private async peerPass(plan: Plan, node: PlanNode, ctx: ProviderContext, on: boolean): Promise<void> {
    const r = await ctx.runner.run(nsenterArgv(plan.network.switchNs, loaderArgv.peerPass(loaderPath(), node.switchIf, on)), { check: false });
    if (r.exitCode !== 0) {
      const tail = (r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n');
      throw new LabError(`${node.name}: peer-pass on ${node.switchIf} failed (exit ${r.exitCode ?? r.signal}):\n${tail}`, 'BPF_LOADER');
    }
  }

  async alive(_plan: Plan, rec: ProcessRecord): Promise<boolean> {
    return isSameProcess(rec);
  }

  /** The process runs on this host: its namespace's sockets are in /proc/<pid>/net/udp. */
  async udpBound(_plan: Plan, _node: PlanNode, port: number, rec: ProcessRecord): Promise<boolean> {
    return udpPortBound(rec.pid, port);
  }

  async stop(plan: Plan, rec: ProcessRecord, ctx: ProviderContext): Promise<void> {
    const { runner: r, paths } = ctx;
    if (r.dryRun) {
      await r.run(['kill', '-TERM', String(rec.pid)]);
      return;
    }
    if (isSameProcess(rec)) {
      await terminate(r, [rec.pid], (left) => ctx.progress.warn(`${rec.node}/${rec.name} (pid ${left.join(' ')}) ignored SIGTERM for ${STOP_GRACE_MS / 1000}s; sending SIGKILL`));
    }
    removeProcessRecord(paths, rec);
  }

  async status(plan: Plan, ctx: ProviderContext): Promise<NodeStatus[]> {
    const { runner: r, paths } = ctx;
    const present = new Set(await this.labNamespaces(plan.lab, r));
    const records = loadProcessRecords(paths);
    const out: NodeStatus[] = [];
    for (const n of plan.nodes) {
      const up = present.has(n.netns);
      let bpf: string[] = [];
      let detail: string | undefined;
      if (up) {
        const a = await attachedBpfOn((argv) => r.run(nsenterArgv(n.netns, argv), { check: false }), n.ifname);
        bpf = a.bpf;
        if (a.link.exitCode !== 0 && !r.dryRun) detail = `${n.ifname} missing: ${a.link.stderr.trim()}`;
      } else {
        detail = `namespace ${n.netns} does not exist; run \`electrode-lab down --name ${plan.lab}\` then up again`;
      }
      out.push(nodeStatus(n, { state: up ? 'up' : 'down', processes: records.filter((p) => p.node === n.name).map((p) => ({ name: p.name, pid: p.pid, alive: isSameProcess(p) })), bpf, ...(detail ? { detail } : {}) }));
    }
    return out;
  }

  /** A node's files are this host's: a copy when the paths differ. */
  async copyOut(_plan: Plan, _node: PlanNode, remote: string, local: string): Promise<boolean> {
    if (!existsSync(remote)) return false;
    if (remote !== local) {
      mkdirSync(dirname(local), { recursive: true });
      cpSync(remote, local);
    }
    return true;
  }

  async collect(plan: Plan, node: PlanNode, destDir: string, ctx: ProviderContext): Promise<void> {
    const { runner: r } = ctx;
    mkdirSync(destDir, { recursive: true });
    const grab = async (file: string, argv: string[]) => {
      const res = await r.run(nsenterArgv(node.netns, argv), { check: false });
      writeFileSync(join(destDir, file), res.stdout + (res.stderr ? `\n# stderr:\n${res.stderr}` : ''));
    };
    await grab('ip-link.txt', ['ip', '-d', '-s', 'link', 'show']);
    await grab('ip-addr.txt', ['ip', 'addr', 'show']);
    await grab('tc-egress.txt', ['tc', 'filter', 'show', 'dev', node.ifname, 'egress']);
    await grab('tc-ingress.txt', ['tc', 'filter', 'show', 'dev', node.ifname, 'ingress']);
  }
}
