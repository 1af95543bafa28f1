/**
 * The lab NIC inside a VM: found by the plan's MAC (interface names differ
 * between boxes), its queue pairs set for native XDP on virtio-net, and
 * native XDP proven on it (an XDP_PASS program, then the fast paths) with a
 * failure translated into what to change.
 */
import { existsSync } from 'node:fs';
import { LabError } from '../core/diagnostics.js';
import { bpfObject, loaderPath } from '../edges/build.js';
import { loaderArgv } from '../core/argv.js';
import { projectRoot } from '../edges/paths.js';
import { RunResult, shellQuote } from '../edges/runner.js';
import { xdpMode } from '../core/xdp.js';
import { Guest } from './vagrantGuest.js';

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

/** The lab NIC (the interface with the plan's MAC), addressed, with queue pairs left for native XDP; its name. */
export async function findLabNic(g: Guest): Promise<string> {
  const { plan, node: n, ctx } = g;
  const links = await g.exec(['ip', '-o', 'link', 'show']);
  const ifname = ifnameForMac(links.stdout, n.mac);
  if (!ifname) {
    throw new LabError(`${n.name}: no interface with MAC ${n.mac}; the VM's NICs are:\n${links.stdout.trim()}\nrun \`electrode-lab down\` and up again (the Vagrantfile sets the MAC)`, 'VAGRANT_NO_LAB_NIC');
  }
  const addr = await g.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', ifname]);
  if (!addr.stdout.includes(`inet ${n.ip}/`)) {
    // vagrant's guest plugin configures it; a box without one gets it here
    await g.exec(['ip', 'addr', 'add', `${n.ip}/${plan.network.prefix}`, 'dev', ifname]);
    await g.exec(['ip', 'link', 'set', ifname, 'mtu', String(plan.network.mtu), 'up']);
  }
  const ch = parseChannels((await g.exec(['ethtool', '-l', ifname], { check: false })).stdout);
  const cpus = Number((await g.exec(['nproc'])).stdout.trim()) || plan.vm.cpus;
  if (ch) {
    if (ch.max < plan.vm.queues) ctx.progress.warn(`${n.name}: ${ifname} has ${ch.max} queue pairs, the plan asked for ${plan.vm.queues}`);
    const k = channelsForXdp(ch, cpus);
    if (k !== undefined) await g.exec(['ethtool', '-L', ifname, 'combined', String(k)]);
  }
  return ifname;
}

/**
 * Native XDP on the lab NIC: `attach` puts a program on it, `ip -d -j link`
 * must then say native, `detach` takes it off again whatever happened. A
 * failure says what to change (xdpAttachFix).
 */
async function verifyNativeXdp(g: Guest, ifname: string, what: string, attach: () => Promise<RunResult>, detach: () => Promise<unknown>): Promise<string> {
  const { plan, node: n } = g;
  const fixCtx = { ifname, cpus: plan.vm.cpus, queues: plan.vm.queues, mtu: plan.network.mtu };
  const a = await attach();
  try {
    if (a.exitCode !== 0) {
      const dmesg = (await g.exec(['dmesg'], { check: false })).stdout.split('\n').slice(-5).join('\n');
      throw new LabError(`${n.name}: native XDP ${what} on ${ifname} failed:\n${a.stderr.trim()}\nfix: ${xdpAttachFix(`${a.stderr}\n${dmesg}`, fixCtx)}`, 'XDP_ATTACH_FAILED');
    }
    const link = await g.exec(['ip', '-d', '-j', 'link', 'show', 'dev', ifname]);
    const mode = xdpMode(link.stdout);
    if (mode !== 'native') throw new LabError(`${n.name}: after ${what}, ${ifname} shows XDP mode '${mode}', not native; fix: ${xdpAttachFix(mode, fixCtx)}`, 'XDP_NOT_NATIVE');
    return link.stdout;
  } finally {
    await detach();
  }
}

/** Native XDP readiness of the lab NIC itself, independent of the Electrode programs: a one-instruction XDP_PASS program. */
export async function checkNicXdp(g: Guest, ifname: string): Promise<void> {
  const obj = passProgram();
  const s = await g.session();
  await s.putFile(obj, '/tmp/electrode-lab-xdp-pass.o');
  await verifyNativeXdp(
    g, ifname, 'attach (XDP_PASS)',
    () => g.exec(['ip', 'link', 'set', 'dev', ifname, 'xdpdrv', 'obj', '/tmp/electrode-lab-xdp-pass.o', 'sec', 'xdp'], { check: false }),
    () => g.exec(['ip', 'link', 'set', 'dev', ifname, 'xdpdrv', 'off'], { check: false }),
  );
}

/** Attaches every fast path in native mode on the lab NIC, checks it is native, detaches. */
export async function checkNativeXdp(g: Guest, ifname: string, nic: string[]): Promise<string> {
  const { node: n, ctx } = g;
  const loader = loaderPath();
  return verifyNativeXdp(
    g, ifname, 'attach of the fast paths',
    () => g.exec(loaderArgv.attach(loader, { pinDir: n.pinDir, peers: ctx.paths.peerTableFile, index: n.index, nic, fp: { broadcast: true, quorum: true, reply: true }, hook: 'xdp', xdpMode: 'native', json: false }), { check: false }),
    () => g.exec(loaderArgv.detach(loader, n.pinDir, nic), { check: false }),
  );
}
