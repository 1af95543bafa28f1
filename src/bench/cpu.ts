/**
 * CPU time per committed operation, for the whole lab and per role (what the
 * paper reports as CPU use on the leader and on the followers).
 *
 * How it is counted (README "CPU per operation"):
 *  - machine: the non-idle time of every CPU the lab runs on, from the
 *    `cpu` line of /proc/stat (user + nice + system + irq + softirq; steal is
 *    the hypervisor's, not ours). One /proc/stat for a netns lab (all nodes
 *    share this host's kernel), one per VM otherwise, summed.
 *  - leader / followers: the replicas' own task time (/proc/<pid>/schedstat,
 *    nanoseconds on a CPU). That includes the kernel work done in the task's
 *    context: its system calls and, on kernels without
 *    CONFIG_IRQ_TIME_ACCOUNTING (ours), the softirqs that ran while it was
 *    on the CPU. On a netns lab a veth delivers in the SENDER's softirq, so a
 *    follower's XDP program mostly runs on the leader's time and vice versa:
 *    the per-role split is the netns lab's, the machine total is honest.
 *  - client: the client's own getrusage (user + system, all threads).
 *  - ksoftirqd: the softirq threads (work the kernel deferred: it is the
 *    lab's, nothing else runs here).
 *  - other: machine minus all of the above (softirqs in the idle loop,
 *    the bench's own sampling commands, anything else on the machine).
 * Context switches: the replicas' (voluntary + involuntary, from
 * /proc/<pid>/status) plus the client's.
 *
 * Pure: the sampling command's text in, figures out.
 */

/** The shell command that samples one kernel: run on a node, it prints what parseCpuSample reads. */
export function cpuSampleScript(pids: number[]): string {
  const procs = pids
    .map((p) => `printf 'pid ${p} '; cat /proc/${p}/schedstat 2>/dev/null | tr -d '\\n'; printf ' '; grep -E '^(non)?voluntary_ctxt_switches' /proc/${p}/status 2>/dev/null | awk '{printf "%s ", $2}'; echo`)
    .join('; ');
  const softirqd = `for f in /proc/[0-9]*/comm; do read -r c < "$f" 2>/dev/null || continue; case "$c" in ksoftirqd/*) d=\${f%/comm}; printf 'ksoftirqd %s\\n' "$(cut -d' ' -f1 "$d/schedstat" 2>/dev/null)";; esac; done`;
  return `echo "clk $(getconf CLK_TCK)"; grep -c '^cpu[0-9]' /proc/stat | sed 's/^/cpus /'; head -1 /proc/stat; ${procs ? procs + '; ' : ''}${softirqd}`;
}

export interface CpuSample {
  clkTck: number;
  cpus: number;
  /** /proc/stat `cpu` line: user nice system idle iowait irq softirq steal, in ticks. */
  stat: number[];
  procs: Map<number, { runNs: number; csw: number }>;
  ksoftirqdNs: number;
}

export function parseCpuSample(text: string): CpuSample | string {
  let clkTck = 0;
  let cpus = 0;
  let stat: number[] | undefined;
  const procs = new Map<number, { runNs: number; csw: number }>();
  let ksoftirqdNs = 0;
  for (const line of text.split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] === 'clk') clkTck = Number(w[1]);
    else if (w[0] === 'cpus') cpus = Number(w[1]);
    else if (w[0] === 'cpu') stat = w.slice(1, 9).map(Number);
    else if (w[0] === 'pid' && w.length >= 4) {
      // pid <pid> <run ns> <wait ns> <slices> <voluntary> <involuntary>
      const run = Number(w[2]);
      if (Number.isFinite(run)) procs.set(Number(w[1]), { runNs: run, csw: (Number(w[5]) || 0) + (Number(w[6]) || 0) });
    } else if (w[0] === 'ksoftirqd' && w[1]) ksoftirqdNs += Number(w[1]) || 0;
  }
  if (!(clkTck > 0)) return 'no CLK_TCK in the sample';
  if (!stat || stat.length < 7 || stat.some((x) => !Number.isFinite(x))) return 'no cpu line from /proc/stat in the sample';
  return { clkTck, cpus, stat, procs, ksoftirqdNs };
}

export interface CpuRecord {
  /** Operations committed while sampled: the client's measured plus warm-up ones. */
  ops: number;
  windowMs: number;
  /** CPUs of the kernels the lab ran on. */
  cpus: number;
  /** Non-idle CPU time of the machine(s) over the window, us, and per op. */
  machineUs: number;
  perOpUs: number;
  /** Share of the window's CPU capacity that was busy (0..1). */
  busy: number;
  /** us per op by role; leader/followers are task times (see the header). */
  roles: { leader: number; followers: number; client: number; ksoftirqd: number; other: number };
  /** Per follower, us per op (the highest is the busiest follower). */
  perFollower: number[];
  /** /proc/stat's irq + softirq ticks, us per op (tick-sampled: rough). */
  softirqTicksUs: number;
  /** Context switches per op: replicas + client. */
  ctxSwitchesPerOp: number;
  /** Share of the window's CPU capacity the hypervisor took (/proc/stat steal), 0..1. */
  stealShare?: number;
  /** Share of the busy CPU time that was none of the lab's processes ("other"), 0..1. */
  otherShare?: number;
  problem?: string;
}

/** Above these a trial is marked noisy: the machine did something else while it ran. */
export const NOISE_STEAL_SHARE = 0.05;
export const NOISE_OTHER_SHARE = 0.3;
export const NOISE_RULE = `noisy = steal above ${NOISE_STEAL_SHARE * 100}% of the CPU capacity, or "other" (CPU time of none of the lab's processes) above ${NOISE_OTHER_SHARE * 100}% of the busy time`;

/** Why a trial's figures are suspect ("steal 7.0%", "other 34.0%"), or undefined when it ran on a quiet machine. */
export function noiseOf(cpu: CpuRecord | undefined): string | undefined {
  if (!cpu) return undefined;
  const why: string[] = [];
  if ((cpu.stealShare ?? 0) > NOISE_STEAL_SHARE) why.push(`steal ${(cpu.stealShare! * 100).toFixed(1)}% of capacity`);
  if ((cpu.otherShare ?? 0) > NOISE_OTHER_SHARE) why.push(`other ${(cpu.otherShare! * 100).toFixed(1)}% of busy CPU`);
  return why.length ? why.join(', ') : undefined;
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/**
 * From samples before and after the client ran (one per kernel), the
 * replicas' pids with their role, and the client's own figures.
 */
export function cpuRecord(input: {
  before: CpuSample[];
  after: CpuSample[];
  windowMs: number;
  ops: number;
  leaderPid: number | undefined;
  followerPids: number[];
  client?: { cpuUs?: number; ctxSwitches?: number };
}): CpuRecord | undefined {
  const { before, after, ops } = input;
  if (!(ops > 0) || before.length !== after.length || !before.length) return undefined;
  let machineTicksUs = 0;
  let stealUs = 0;
  let softirqUs = 0;
  let cpus = 0;
  let ksoftirqdUs = 0;
  const task = new Map<number, { us: number; csw: number }>();
  for (let i = 0; i < before.length; i++) {
    const a = before[i]!, b = after[i]!;
    const tickUs = 1e6 / b.clkTck;
    const d = (k: number) => Math.max(0, (b.stat[k] ?? 0) - (a.stat[k] ?? 0));
    // user nice system idle iowait irq softirq steal
    machineTicksUs += (d(0) + d(1) + d(2) + d(5) + d(6)) * tickUs;
    softirqUs += (d(5) + d(6)) * tickUs;
    stealUs += d(7) * tickUs;
    cpus += b.cpus;
    ksoftirqdUs += Math.max(0, b.ksoftirqdNs - a.ksoftirqdNs) / 1000;
    for (const [pid, p] of b.procs) {
      const q = a.procs.get(pid);
      if (q) task.set(pid, { us: Math.max(0, p.runNs - q.runNs) / 1000, csw: Math.max(0, p.csw - q.csw) });
    }
  }
  const us = (pid: number | undefined) => (pid !== undefined ? (task.get(pid)?.us ?? 0) : 0);
  const leaderUs = us(input.leaderPid);
  const followerUs = input.followerPids.map(us);
  const clientUs = input.client?.cpuUs ?? 0;
  const replicaCsw = [...task.values()].reduce((x, t) => x + t.csw, 0);
  const accounted = leaderUs + followerUs.reduce((x, y) => x + y, 0) + clientUs + ksoftirqdUs;
  // the task clocks are exact, /proc/stat is tick-sampled: never let "other" go negative
  const machineUs = Math.max(machineTicksUs, accounted);
  const per = (x: number) => round(x / ops, 2);
  return {
    ops,
    windowMs: Math.round(input.windowMs),
    cpus,
    machineUs: Math.round(machineUs),
    perOpUs: per(machineUs),
    busy: cpus > 0 && input.windowMs > 0 ? round(machineUs / (cpus * input.windowMs * 1000), 3) : 0,
    roles: {
      leader: per(leaderUs),
      followers: per(followerUs.reduce((x, y) => x + y, 0)),
      client: per(clientUs),
      ksoftirqd: per(ksoftirqdUs),
      other: per(machineUs - accounted),
    },
    perFollower: followerUs.map(per),
    softirqTicksUs: per(softirqUs),
    ctxSwitchesPerOp: round((replicaCsw + (input.client?.ctxSwitches ?? 0)) / ops, 2),
    stealShare: cpus > 0 && input.windowMs > 0 ? round(stealUs / (cpus * input.windowMs * 1000), 3) : 0,
    otherShare: machineUs > 0 ? round((machineUs - accounted) / machineUs, 3) : 0,
    ...(input.client?.cpuUs === undefined ? { problem: 'the client did not report its CPU time (an old client binary: run `npm run build`)' } : {}),
  };
}
