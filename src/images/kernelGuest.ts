/**
 * The check-kernel guest: the /init script its initramfs runs (load every
 * object, attach the fast paths on a veth the way a replica gets them, send
 * frames through each, report the counters, detach, power off) and the
 * reading of its console into a verdict. Pure: setup in, script out; console
 * text in, report and problems out.
 */
import { basename } from 'node:path';
import { loaderArgv } from '../core/argv.js';
import { shellQuote } from '../edges/runner.js';

/** Where the guest's initramfs has the loader. */
export const GUEST_LOADER = '/el/el-loader';
const sh = (argv: string[]) => shellQuote(argv);

export interface GuestSetup {
  /** From a real 3-replica plan: the node the guest plays (replica0) and two peers. */
  me: { index: number; mac: string; ip: string; port: number };
  peers: { index: number; mac: string; ip: string; port: number }[];
  prefix: number;
  /** Module files inside the initramfs, in load order. */
  modules: string[];
  objects: string[];
}

/** The initramfs /init: each step reports `EL-GUEST <key> <value>` on the console, outputs in EL-LOG blocks. */
export function guestInit(s: GuestSetup): string {
  const pin = '/sys/fs/bpf/electrode-lab/check/replica0';
  const [p1, p2] = s.peers as [GuestSetup['peers'][number], GuestSetup['peers'][number]];
  const ep = (n: { mac: string; ip: string; port: number }) => `${n.mac},${n.ip},${n.port}`;
  const ipp = (n: { ip: string; port: number }) => `${n.ip},${n.port}`;
  const probe = (key: string, args: string) => `/el/el-probe ${args} 2>/tmp/probe.err; rc=$?; say probe ${key} $rc; [ $rc = 0 ] || log probe-${key} /tmp/probe.err`;
  return `#!/bin/busybox sh
# electrode-lab check-kernel: generated, runs as PID 1 in the guest
/bin/busybox --install -s /bin
export PATH=/bin
say() { echo "EL-GUEST $*"; }
log() { echo "EL-LOG-BEGIN $1"; tail -c 6000 "$2"; echo; echo "EL-LOG-END $1"; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp 2>/dev/null
mount -t bpf bpf /sys/fs/bpf
say release $(uname -r)
${s.modules.map((m) => `insmod ${m} 2>/tmp/insmod.err || say note insmod ${basename(m)}: $(cat /tmp/insmod.err)`).join('\n')}
${s.objects
  .map(
    (o) => `mkdir -p /sys/fs/bpf/loadall
bpftool prog loadall /el/${o} /sys/fs/bpf/loadall/${o.replace(/\W/g, '_')} >/tmp/load.log 2>&1; rc=$?
say load ${o} $rc
[ $rc = 0 ] || log load-${o} /tmp/load.log
rm -rf /sys/fs/bpf/loadall`,
  )
  .join('\n')}
ip link set lo up
if ip link add el0 type veth peer name el1 2>/tmp/veth.err; then
  ip link set el0 address ${s.me.mac} mtu 1500 up && ip link set el1 address 02:4c:ee:ee:ee:01 up
  ip addr add ${s.me.ip}/${s.prefix} dev el0
  ip neigh replace ${p1.ip} lladdr ${p1.mac} dev el0 nud permanent
  ip neigh replace ${p2.ip} lladdr ${p2.mac} dev el0 nud permanent
  # frames el0 sends with native XDP_TX are accepted by el1 only when el1 runs NAPI
  ${sh(loaderArgv.peerPass(GUEST_LOADER, 'el1', true))} >/tmp/pass.log 2>&1 || log peer-pass /tmp/pass.log
  ${sh(loaderArgv.attach(GUEST_LOADER, { pinDir: pin, peers: '/el/peers.table', index: s.me.index, nic: ['--ifname', 'el0'], fp: { broadcast: true, quorum: true, reply: true }, hook: 'xdp', xdpMode: 'native' }))} >/tmp/attach.json 2>/tmp/attach.log; rc=$?
  say attach $rc
  [ $rc = 0 ] || log attach /tmp/attach.log
  log attach-json /tmp/attach.json
  link=$(ip -d link show dev el0)
  case "$link" in *xdpgeneric*) say xdp generic ;; *" xdp "*|*"xdp/"*|*"prog/xdp"*) say xdp native ;; *) say xdp none ;; esac
  tc filter show dev el0 egress | grep -q bpf && say tc-egress yes || say tc-egress no
  # leader of view 0: a marked Prepare leaves through TC (fan-out to replica${p2.index}, quorum slot armed) ...
  ${probe('broadcast', `udp --src ${ipp(s.me)} --dst ${ipp(p1)} --type 3 --flags 1 --view 0 --opnum 1 --aux 1 --payload-len 40`)}
  # ... and its PrepareOKs arrive: the first completes the quorum (f=1), the second is pruned
  ${probe('quorum', `raw --ifname el1 --src ${ep(p1)} --dst ${ep(s.me)} --type 4 --replica ${p1.index} --view 0 --opnum 1 --aux 0`)}
  ${probe('quorum2', `raw --ifname el1 --src ${ep(p2)} --dst ${ep(s.me)} --type 4 --replica ${p2.index} --view 0 --opnum 1 --aux 0`)}
  # follower in view 1 (leader replica${p1.index}), lease renewed as a replica would: the fast reply answers
  /el/el-loader ctrl --pin-dir ${pin} --view 1 --status 0 --lease-ms 600000 --fr-view 1 --fr-last-op 0 >/tmp/ctrl.log 2>&1 || log ctrl /tmp/ctrl.log
  ${probe('reply', `raw --ifname el1 --src ${ep(p1)} --dst ${ep(s.me)} --type 3 --replica ${p1.index} --view 1 --opnum 1 --aux 1 --payload-len 40 --valid-entry`)}
  /el/el-loader drain --pin-dir ${pin} >/tmp/drain.log 2>&1; say drained $(grep -c '"opnum":1' /tmp/drain.log)
  ${sh(loaderArgv.stats(GUEST_LOADER, pin))} >/tmp/stats.json 2>&1; say stats $?
  log stats /tmp/stats.json
  ${sh(loaderArgv.detach(GUEST_LOADER, pin, ['--ifname', 'el0']))} >/tmp/detach.log 2>&1; rc=$?
  say detach $rc
  [ $rc = 0 ] || log detach /tmp/detach.log
  say pins-left $(ls ${pin} 2>/dev/null | wc -l)
else
  say attach skipped: no veth in this kernel: $(cat /tmp/veth.err)
fi
say done
poweroff -f
`;
}

type Counters = Record<'seen' | 'passed' | 'dropped' | 'cloned' | 'replied' | 'fallback' | 'full' | 'errors', number>;

export interface GuestReport {
  release?: string;
  loads: { object: string; ok: boolean; log?: string }[];
  attach?: { ok: boolean; log?: string } | { skipped: string };
  /** el-loader attach --json: which fast paths loaded, and why the others did not. */
  attached?: { enabled: string; loaded: string; objects: { object: string; loaded: boolean; meaning?: string; verdict?: string }[] };
  xdp?: string;
  tcEgress?: boolean;
  probes: Record<string, boolean>;
  drained?: number;
  stats?: Record<string, Counters>;
  detach?: boolean;
  pinsLeft?: number;
  notes: string[];
  done: boolean;
}

/** Reads the `EL-GUEST` lines and `EL-LOG-BEGIN/END` blocks from the serial console. */
export function parseGuestConsole(text: string): GuestReport {
  const rep: GuestReport = { loads: [], probes: {}, notes: [], done: false };
  const logs = new Map<string, string>();
  const lines = text.replace(/\r/g, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const lb = /EL-LOG-BEGIN (\S+)/.exec(line);
    if (lb) {
      const body: string[] = [];
      for (i++; i < lines.length && !lines[i]!.includes(`EL-LOG-END ${lb[1]}`); i++) body.push(lines[i]!);
      logs.set(lb[1]!, body.join('\n').trim());
      continue;
    }
    const m = /EL-GUEST (\S+) ?(.*)$/.exec(line);
    if (!m) continue;
    const [key, rest] = [m[1]!, m[2]!.trim()];
    const words = rest.split(/\s+/);
    switch (key) {
      case 'release': rep.release = rest; break;
      case 'load': rep.loads.push({ object: words[0] ?? '?', ok: words[1] === '0' }); break;
      case 'attach': rep.attach = words[0] === 'skipped:' ? { skipped: rest.slice('skipped:'.length).trim() } : { ok: words[0] === '0' }; break;
      case 'xdp': rep.xdp = words[0]; break;
      case 'tc-egress': rep.tcEgress = words[0] === 'yes'; break;
      case 'probe': rep.probes[words[0] ?? '?'] = words[1] === '0'; break;
      case 'drained': rep.drained = Number(words[0]); break;
      case 'detach': rep.detach = words[0] === '0'; break;
      case 'pins-left': rep.pinsLeft = Number(words[0]); break;
      case 'note': rep.notes.push(rest); break;
      case 'done': rep.done = true; break;
    }
  }
  for (const l of rep.loads) {
    const log = logs.get(`load-${l.object}`);
    if (log) l.log = log;
  }
  if (rep.attach && 'ok' in rep.attach && logs.has('attach')) rep.attach.log = logs.get('attach');
  const json = (k: string) => {
    try {
      return logs.get(k) ? (JSON.parse(logs.get(k)!) as unknown) : undefined;
    } catch {
      return undefined;
    }
  };
  const a = json('attach-json') as GuestReport['attached'] | undefined;
  if (a) rep.attached = a;
  const st = json('stats') as GuestReport['stats'] | undefined;
  if (st) rep.stats = st;
  for (const [k, v] of logs) if (k.startsWith('probe-')) rep.notes.push(`${k}: ${v}`);
  return rep;
}

/** What each fast path must show in the guest's counters after its frames (the programs behind it moved). */
export const COUNTER_CHECKS: { path: string; what: string; ok: (s: Record<string, Counters>, rep: GuestReport) => boolean }[] = [
  { path: 'broadcast', what: 'broadcast.cloned >= 1 (the marked Prepare was fanned out)', ok: (s) => (s.broadcast?.cloned ?? 0) >= 1 },
  { path: 'quorum', what: 'quorum.passed >= 1 and quorum.dropped >= 1 (one PrepareOK up, the other pruned)', ok: (s) => (s.quorum?.passed ?? 0) >= 1 && (s.quorum?.dropped ?? 0) >= 1 },
  { path: 'reply', what: 'reply.replied >= 1 and one ring record drained', ok: (s, rep) => (s.reply?.replied ?? 0) >= 1 && rep.drained === 1 },
];

/** Problems in a report, one line each; empty = the fast paths work on that kernel. */
export function reportProblems(rep: GuestReport, objects: string[]): string[] {
  const p: string[] = [];
  if (!rep.release) p.push('the guest never reported: the kernel did not boot to our /init (see the console log)');
  for (const o of objects) {
    const l = rep.loads.find((x) => x.object === o);
    if (!l) p.push(`${o}: not loaded`);
    else if (!l.ok) p.push(`${o}: rejected by the ${rep.release ?? 'guest'} verifier:\n${verifierVerdict(l.log ?? '')}`);
  }
  if (!rep.attach) p.push('attach: not reached');
  else if ('skipped' in rep.attach) p.push(`attach: skipped (${rep.attach.skipped})`);
  else if (!rep.attach.ok) p.push(`attach failed:\n${(rep.attach.log ?? '').trim().split('\n').slice(-8).join('\n')}`);
  else {
    for (const o of rep.attached?.objects ?? []) if (!o.loaded) p.push(`el-loader left out ${o.object}: ${o.meaning ?? '?'}`);
    if (rep.xdp !== 'native') p.push(`XDP attached in mode '${rep.xdp ?? '?'}', not native`);
    if (!rep.tcEgress) p.push('no TC egress program after attach');
    if (!rep.stats) p.push('el-loader stats failed');
    else {
      for (const c of COUNTER_CHECKS) if (!c.ok(rep.stats, rep)) p.push(`${c.path}: counters did not move: expected ${c.what}; got ${JSON.stringify(rep.stats[c.path] ?? {})}`);
      const errs = Object.entries(rep.stats).filter(([, v]) => v.errors > 0);
      if (errs.length) p.push(`errors counted: ${errs.map(([k, v]) => `${k} ${v.errors}`).join(', ')}`);
    }
    for (const [k, ok] of Object.entries(rep.probes)) if (!ok) p.push(`probe ${k} could not send its frame`);
    if (!rep.detach) p.push('detach failed');
    if (rep.pinsLeft !== 0) p.push(`${rep.pinsLeft ?? '?'} pins left after detach`);
  }
  if (!rep.done && rep.release) p.push('the guest stopped before the end of the check');
  return p;
}

/** The lines of a verifier log that say why: the last instructions and the message. */
export function verifierVerdict(log: string): string {
  const lines = log.trim().split('\n');
  return lines.slice(-12).join('\n');
}
