/**
 * The netns provider for real (root): `up` 3, 5 and 7 replicas through the
 * built CLI; every node reaches every other by UDP on the plan's addresses and
 * ports; `status` shows them (and real attached eBPF); `down` leaves no
 * namespace, veth, bridge, pin or process, also after processes were killed
 * by hand and when the state folder is partial.
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LabPaths } from '../../src/edges/paths.js';
import { Plan } from '../../src/core/plan.js';
import { NetnsProvider } from '../../src/providers/netns.js';
import { processAlive } from '../../src/edges/proc.js';
import { ProcessRecord } from '../../src/providers/provider.js';
import { ECHO_CLIENT, ECHO_SERVER, IS_ROOT, SKIP_REASON, cliIn, fileHas, leftovers, providerCtx, savedPlan, tempHome, waitFor } from '../helpers/netns.helpers.js';

const home = tempHome('el-netns-');
const cli = cliIn(home);
const provider = new NetnsProvider();
const started: number[] = [];
/** iproute2's `ip ... xdpgeneric obj` / `tc ... bpf obj` create /sys/fs/bpf/{tc/globals,ip,xdp} on first use: ours to remove when they were not there before. */
const IPROUTE_BPF = '/sys/fs/bpf/tc';
const iprouteBpfExisted = existsSync(IPROUTE_BPF);

afterAll(async () => {
  if (!IS_ROOT) return;
  if (!iprouteBpfExisted && existsSync(IPROUTE_BPF)) {
    // only empty folders and iproute2's two symlinks: rmdir refuses anything with pins in it
    await execa('rmdir', [`${IPROUTE_BPF}/globals`, IPROUTE_BPF], { reject: false });
    for (const l of ['/sys/fs/bpf/ip', '/sys/fs/bpf/xdp']) if (!existsSync(IPROUTE_BPF)) rmSync(l, { force: true });
  }
  // whatever a failed test left: take its labs down through the product itself
  for (const lab of ['nt3', 'nt5', 'nt7', 'ntfail', 'ntleft', 'ntint', 'ntdry']) await cli('down', '--name', lab);
  for (const pid of started) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(home, { recursive: true, force: true });
});

async function startEchoServers(plan: Plan, lab: string): Promise<ProcessRecord[]> {
  const ctx = providerCtx(home, lab);
  const recs: ProcessRecord[] = [];
  for (const n of plan.nodes) {
    const rec = await provider.spawn(plan, n, 'echo', ['python3', '-u', '-c', ECHO_SERVER, n.ip, String(n.port), n.name], ctx);
    started.push(rec.pid);
    recs.push(rec);
  }
  for (const r of recs) await waitFor(`${r.node}'s echo server to bind`, () => fileHas(r.logFile, 'ready'));
  return recs;
}

/** From every node to every other node, on the plan's addresses and ports. */
async function expectAllPairsReach(plan: Plan, lab: string): Promise<void> {
  const ctx = providerCtx(home, lab);
  for (const src of plan.nodes) {
    const targets = plan.nodes.filter((t) => t !== src).map((t) => [t.name, t.ip, t.port]);
    const r = await provider.exec(plan, src, ['python3', '-c', ECHO_CLIENT, src.ip, JSON.stringify(targets)], ctx);
    const replies = JSON.parse(r.stdout) as Record<string, string>;
    const expected = Object.fromEntries(plan.nodes.filter((t) => t !== src).map((t) => [t.name, `${t.name} from ${src.ip} via ${t.ip}:${t.port}`]));
    expect(replies, `UDP replies seen from ${src.name}`).toEqual(expected);
  }
}

function macPrefix(plan: Plan): string {
  return plan.nodes[0]!.mac.slice(0, 11);
}

async function statusJson(lab: string) {
  const r = await cli('status', '--json', '--name', lab);
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { lab: string; phase: string; nodes: { node: string; state: string; ip: string; mac: string; port: number; processes: { name: string; pid: number; alive: boolean }[]; bpf: string[] }[] };
}

describe.skipIf(!IS_ROOT)(`netns provider, real namespaces (${IS_ROOT ? 'as root' : SKIP_REASON})`, () => {
  it('up 3: all pairs reach each other by UDP; status shows nodes, processes and real attached XDP/TC programs; down leaves nothing', async () => {
    const up = await cli('up', '3', '--provider', 'netns', '--name', 'nt3', '--subnet', '10.203.0.0/24', '--mtu', '3000');
    expect(up.exitCode, up.stderr).toBe(0);
    expect(up.stderr).toContain('provider: netns (chosen with --provider)');
    const plan = savedPlan(home, 'nt3');
    expect(plan.nodes).toHaveLength(4);
    const paths = new LabPaths(home, 'nt3');
    for (const f of [paths.planFile, paths.replicaConfigFile, paths.peerTableFile, paths.stateFile]) expect(existsSync(f), f).toBe(true);

    // the interface really carries the plan's MAC, address and MTU; the bpffs pin folder is there
    const link = await cli('--name', 'nt3', 'exec', 'replica1', '--', 'ip', '-o', 'addr', 'show', 'dev', 'eth0');
    expect(link.exitCode).toBe(0);
    expect(link.stdout).toContain(`inet ${plan.nodes[1]!.ip}/24`);
    const failing = await cli('--name', 'nt3', 'exec', 'replica1', '--', 'sh', '-c', 'exit 7');
    expect(failing.exitCode).toBe(7);
    const addr = JSON.parse((await provider.exec(plan, plan.nodes[1]!, ['ip', '-j', 'addr', 'show', 'dev', 'eth0'], providerCtx(home, 'nt3'))).stdout)[0];
    expect(addr.address).toBe(plan.nodes[1]!.mac);
    expect(addr.mtu).toBe(3000);
    expect(addr.addr_info.map((a: { local: string }) => a.local)).toContain(plan.nodes[1]!.ip);
    expect(existsSync(plan.nodes[1]!.pinDir)).toBe(true);
    // ... and visible from inside the node (nsenter --net keeps the mount namespace; `ip netns exec` would not)
    const inside = await provider.exec(plan, plan.nodes[1]!, ['stat', '-f', '-c', '%T', plan.nodes[1]!.pinDir], providerCtx(home, 'nt3'));
    expect(inside.stdout.trim()).toBe('bpf_fs');

    await startEchoServers(plan, 'nt3');
    await expectAllPairsReach(plan, 'nt3');

    // real eBPF on replica0's eth0: generic XDP + TC egress, as the loader would attach them
    const dir = mkdtempSync(join(tmpdir(), 'el-bpf-'));
    writeFileSync(
      join(dir, 'p.c'),
      '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("xdp") int el_test_xdp(struct xdp_md *c) { return XDP_PASS; }\nSEC("tc") int el_test_tc(struct __sk_buff *s) { return 0; }\nchar LICENSE[] SEC("license") = "GPL";\n',
    );
    await execa('clang', ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', join(dir, 'p.c'), '-o', join(dir, 'p.o')]);
    const r0 = plan.nodes[0]!;
    const ctx = providerCtx(home, 'nt3');
    await provider.exec(plan, r0, ['ip', 'link', 'set', 'dev', 'eth0', 'xdpgeneric', 'obj', join(dir, 'p.o'), 'sec', 'xdp'], ctx);
    await provider.exec(plan, r0, ['tc', 'qdisc', 'add', 'dev', 'eth0', 'clsact'], ctx);
    await provider.exec(plan, r0, ['tc', 'filter', 'add', 'dev', 'eth0', 'egress', 'bpf', 'da', 'obj', join(dir, 'p.o'), 'sec', 'tc'], ctx);
    rmSync(dir, { recursive: true, force: true });

    const st = await statusJson('nt3');
    expect(st.phase).toBe('up');
    expect(st.nodes.map((n) => [n.node, n.state, n.ip, n.mac, n.port])).toEqual(plan.nodes.map((n) => [n.name, 'up', n.ip, n.mac, n.port]));
    for (const n of st.nodes) expect(n.processes).toEqual([expect.objectContaining({ name: 'echo', alive: true })]);
    expect(st.nodes[0]!.bpf).toEqual([expect.stringMatching(/^xdp\(generic\) el_test_xdp id \d+$/), expect.stringMatching(/^tc egress el_test_tc id \d+$/)]);
    expect(st.nodes[1]!.bpf).toEqual([]);
    const table = await cli('status', '--name', 'nt3');
    expect(table.stdout).toMatch(/replica0\s+up\s+10\.203\.0\.10\s+51000/);

    // a second `up` under the same name is refused and changes nothing
    const again = await cli('up', '3', '--provider', 'netns', '--name', 'nt3', '--subnet', '10.203.0.0/24');
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain("LAB_ALREADY_UP name=nt3: lab 'nt3' is already up; run `electrode-lab down --name nt3` first");
    expect((await statusJson('nt3')).nodes.every((n) => n.processes[0]!.alive)).toBe(true);

    const pids = st.nodes.map((n) => n.processes[0]!.pid);
    const down = await cli('down', '--name', 'nt3');
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await leftovers('nt3', macPrefix(plan))).toEqual([]);
    expect(pids.filter(processAlive)).toEqual([]);
    expect(existsSync(paths.root)).toBe(false);
    // idempotent
    const twice = await cli('down', '--name', 'nt3');
    expect(twice.exitCode).toBe(0);
  });

  it('up 5: all pairs reach each other; down after processes were killed by hand (kill -9 by PID) and with a process nobody recorded', async () => {
    const up = await cli('up', '5', '--provider', 'netns', '--name', 'nt5', '--subnet', '10.205.0.0/24', '--clients', '2');
    expect(up.exitCode, up.stderr).toBe(0);
    const plan = savedPlan(home, 'nt5');
    expect(plan.nodes).toHaveLength(7);
    const recs = await startEchoServers(plan, 'nt5');
    await expectAllPairsReach(plan, 'nt5');

    // kill two servers by hand; the pid files now name dead processes
    for (const r of recs.slice(0, 2)) process.kill(r.pid, 'SIGKILL');
    await waitFor('the killed servers to die', () => recs.slice(0, 2).every((r) => !processAlive(r.pid)));
    const st = await statusJson('nt5');
    expect(st.nodes.slice(0, 2).map((n) => n.processes[0]!.alive)).toEqual([false, false]);
    expect(st.nodes.slice(2).every((n) => n.processes[0]!.alive)).toBe(true);

    // a process started inside a node behind the lab's back (no pid file)
    const stray = spawn('nsenter', [`--net=/run/netns/${plan.nodes[3]!.netns}`, '--', 'sleep', '600'], { detached: true, stdio: 'ignore' });
    stray.unref();
    started.push(stray.pid!);
    await waitFor('the stray process to enter the namespace', async () => (await execa('ip', ['netns', 'pids', plan.nodes[3]!.netns])).stdout.split('\n').includes(String(stray.pid)));

    const down = await cli('down', '--name', 'nt5');
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await leftovers('nt5', macPrefix(plan))).toEqual([]);
    expect([...recs.map((r) => r.pid), stray.pid!].filter(processAlive)).toEqual([]);
  });

  it('up 7: all pairs reach each other; down with a partial state folder (plan.json and pid files gone) still removes everything', async () => {
    const up = await cli('up', '7', '--provider', 'netns', '--name', 'nt7', '--subnet', '10.207.0.0/24');
    expect(up.exitCode, up.stderr).toBe(0);
    const plan = savedPlan(home, 'nt7');
    expect(plan.nodes).toHaveLength(8);
    const recs = await startEchoServers(plan, 'nt7');
    await expectAllPairsReach(plan, 'nt7');

    const paths = new LabPaths(home, 'nt7');
    rmSync(paths.planFile);
    rmSync(paths.pidsDir, { recursive: true });
    const down = await cli('down', '--name', 'nt7');
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.stderr).toContain('no saved plan');
    expect(await leftovers('nt7', macPrefix(plan))).toEqual([]);
    expect(recs.map((r) => r.pid).filter(processAlive)).toEqual([]);
    expect(existsSync(paths.root)).toBe(false);
  });

  it('--dry-run up prints the commands and creates nothing', async () => {
    const r = await cli('--dry-run', 'up', '3', '--provider', 'netns', '--name', 'ntdry', '--subnet', '10.213.0.0/24');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('[dry-run] ip netns add el-ntdry-sw');
    expect(r.stdout).toContain('[dry-run] ip -n el-ntdry-sw link add p-replica2 mtu 1500 type veth peer name eth0 mtu 1500 netns el-ntdry-replica2');
    expect(await leftovers('ntdry', '02:4c:')).toEqual([]);
    expect(existsSync(new LabPaths(home, 'ntdry').root)).toBe(false);
  });

  it('up interrupted by SIGINT half-way removes what it created', async () => {
    const child = execa('node', [join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js'), 'up', '15', '--clients', '8', '--provider', 'netns', '--name', 'ntint', '--subnet', '10.215.0.0/24'], {
      reject: false,
      env: { ELECTRODE_LAB_HOME: home, CI: 'true' },
    });
    // signal once the build is under way (replica2's namespace exists: 20 more nodes to go)
    await waitFor('up to reach replica2', async () => (await execa('ip', ['netns', 'list'])).stdout.includes('el-ntint-replica2'), 30_000);
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('SIGINT: stopping after the current step');
    expect(r.stderr).toContain('interrupted by SIGINT');
    expect(r.stderr).toContain('everything it created was removed');
    expect(await leftovers('ntint', '02:4c:')).toEqual([]);
    expect(existsSync(new LabPaths(home, 'ntint').root)).toBe(false);
  });

  it('up that fails half-way (a sysctl that breaks on its 4th call, in the second node) tears down what it created and says so', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'el-fakebin-'));
    // calls 1-3: the switch (IPv6 off, br_netfilter off) and replica0; call 4 is replica1's
    const real = (await execa('sh', ['-c', 'command -v sysctl'])).stdout.trim();
    writeFileSync(join(bin, 'sysctl'), `#!/bin/sh\nn=$(cat "${bin}/count" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "${bin}/count"\nif [ $n -ge 4 ]; then echo "sysctl: simulated failure" >&2; exit 1; fi\nexec ${real} "$@"\n`, { mode: 0o755 });
    const r = await execa('node', [join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js'), 'up', '3', '--provider', 'netns', '--name', 'ntfail', '--subnet', '10.209.0.0/24'], {
      reject: false,
      env: { ELECTRODE_LAB_HOME: home, CI: 'true', PATH: `${bin}:${process.env.PATH}` },
    });
    rmSync(bin, { recursive: true, force: true });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('tearing down what was created');
    expect(r.stderr).toContain('up failed; everything it created was removed');
    expect(r.stderr).toContain('simulated failure');
    expect(await leftovers('ntfail', '02:4c:')).toEqual([]);
    expect(existsSync(new LabPaths(home, 'ntfail').root)).toBe(false);
  });

  it('leftover namespaces from a crashed run under the same name: up refuses (nothing changed), down removes them', async () => {
    await execa('ip', ['netns', 'add', 'el-ntleft-replica4']);
    const r = await cli('up', '3', '--provider', 'netns', '--name', 'ntleft', '--subnet', '10.211.0.0/24');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('LAB_LEFTOVERS name=ntleft: namespaces el-ntleft-replica4 are left from an earlier run; run `electrode-lab down --name ntleft` first');
    expect((await execa('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith('el-ntleft-'))).toEqual(['el-ntleft-replica4']);
    const d = await cli('down', '--name', 'ntleft');
    expect(d.exitCode).toBe(0);
    expect(await leftovers('ntleft', '02:4c:')).toEqual([]);
  });
});
