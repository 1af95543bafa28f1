/**
 * Real multi-process clusters of the native replica (ASan+UBSan builds) on
 * loopback, 3, 5 and 7 replicas: 10,000 ops commit; the leader killed
 * mid-run (SIGKILL by PID) forces a view change and the client finishes;
 * killed followers are survived; 5 % packet drop on every replica is
 * survived; loss + duplication + reordering with a leader kill is survived;
 * malformed datagrams are counted and dropped. After each, every
 * acknowledged request is in every surviving replica's committed log, in
 * the same order.
 */
import { execa } from 'execa';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ASAN_BIN, LoopbackLauncher, TestCluster, buildNative, historyProblems, loopbackAddrs, missingAcks, nextPortBase, parseDump } from '../helpers/cluster.js';

const scratch = mkdtempSync(join(tmpdir(), 'el-native-'));
let launcher = new LoopbackLauncher();
let seq = 0;

beforeAll(async () => {
  await buildNative();
}, 180_000);

afterEach(async () => {
  await launcher.cleanup();
  launcher = new LoopbackLauncher();
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function cluster(n: number): TestCluster {
  const f = (n - 1) / 2;
  const dir = join(scratch, `c${n}-${seq++}`);
  return new TestCluster({
    dir,
    n,
    f,
    addrs: loopbackAddrs(n, nextPortBase()),
    replicaNodes: Array.from({ length: n }, (_, i) => `replica${i}`),
    clientNode: 'client0',
    launcher,
  });
}

describe.each([3, 5, 7])('%i replicas on loopback (ASan build)', (n) => {
  it('commits 10,000 operations, identically everywhere', async () => {
    const c = cluster(n);
    await c.start();
    const r = await c.runClient(['-n', '10000', '-t', '4']);
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.json.completed).toBe(10000);
    expect(r.json.errors).toBe(0);
    expect(r.acks).toHaveLength(10000);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
    // nothing was lost or added: exactly the 10,000 requests, no view change
    expect(c.highestNormalView()).toBe(0);
  }, 90_000);

  it('survives killing the leader mid-run: view change, the client finishes', async () => {
    const c = cluster(n);
    await c.start();
    const client = c.runClient(['-n', '10000', '-t', '4']);
    await c.waitCommitted(0, 2000);
    await c.kill(0);
    const r = await client;
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(10000);
    expect(r.json.timeouts).toBeGreaterThan(0); // requests to the dead leader timed out
    expect(c.highestNormalView()).toBeGreaterThanOrEqual(1);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
  }, 90_000);

  const victims = n >= 5 ? [n - 1, n - 2] : [n - 1];
  it(`survives killing follower(s) ${victims.join(' and ')} mid-run`, async () => {
    const c = cluster(n);
    await c.start();
    const client = c.runClient(['-n', '10000', '-t', '4']);
    await c.waitCommitted(0, 2000);
    for (const v of victims) await c.kill(v);
    const r = await client;
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(10000);
    expect(c.highestNormalView()).toBe(0); // the leader stayed
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
  }, 90_000);

  it('survives 5 % packet drop on every replica', async () => {
    const c = cluster(n);
    await c.start(() => ['--drop-rate', '0.05']);
    const r = await c.runClient(['-n', '10000', '-t', '8', '--timeout-ms', '20']);
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(10000);
    expect(r.json.timeouts).toBeGreaterThan(0); // drops did happen and were retried
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
    for (const i of c.survivors()) expect(c.log(i)).toMatch(/dropped \(--drop-rate\) [1-9]\d*/);
  }, 120_000);
});

describe.each([3, 5])('%i replicas: loss, duplication and reordering at once', (n) => {
  it('keeps one history through 2 % drop, 5 % duplication, 5 % reordering and a leader kill', async () => {
    const c = cluster(n);
    await c.start(() => ['--drop-rate', '0.02', '--dup-rate', '0.05', '--reorder-rate', '0.05']);
    const client = c.runClient(['-n', '10000', '-t', '8', '--timeout-ms', '20']);
    await c.waitCommitted(0, 3000);
    await c.kill(0);
    const r = await client;
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(10000);
    expect(c.highestNormalView()).toBeGreaterThanOrEqual(1);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
    for (const i of c.survivors()) expect(c.log(i)).toMatch(/duplicated [1-9]\d*, reordered [1-9]\d*/);
  }, 120_000);
});

describe.each([9, 15])('%i replicas (larger clusters, up to the eBPF limit)', (n) => {
  it('commits 3,000 operations and survives a leader kill', async () => {
    const c = cluster(n);
    await c.start();
    const client = c.runClient(['-n', '3000', '-t', '4']);
    await c.waitCommitted(0, 500);
    await c.kill(0);
    const r = await client;
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(3000);
    expect(c.highestNormalView()).toBeGreaterThanOrEqual(1);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
  }, 120_000);
});

describe('a lagging replica becomes the leader', () => {
  it('fetches the committed ops it misses before finishing the view change', async () => {
    const c = cluster(3);
    await c.start();
    const client = c.runClient(['-n', '40000', '-t', '4']);
    await c.waitCommitted(0, 1000);
    c.pause(1); // replica 1, the next leader, falls far behind: its 4 MiB socket buffer overflows
    const before = c.dump(0).length;
    await c.waitCommitted(0, before + 12000);
    await c.kill(0);
    c.resume(1);
    const r = await client;
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(40000);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
    // it was elected with a log that did not reach the winner's suffix
    const story = [0, 1, 2].map((i) => c.log(i)).join('').split('\n').filter((l) => !/ready|dumped/.test(l)).join('\n');
    expect(c.log(1), story).toMatch(/fetching committed ops after \d+ from replica 2/);
    expect(c.log(1)).toMatch(/view \d+ normal \(elected\), leader 1/);
  }, 120_000);
});

describe('a follower away past the log hold', () => {
  it('catches up by snapshot mid-life: its dump says "# snapshot S" and goes on at S+1; nothing acknowledged is lost', async () => {
    const c = cluster(3);
    await c.start();
    const client = c.runClient(['-n', '80000', '-t', '4']);
    await c.waitCommitted(0, 1000);
    c.pause(2);
    const before = c.dump(0).length;
    // past the hold (VR_DEFAULT_LOG_HOLD, 16,384 committed ops) the others drop what replica 2
    // lacks, and past its 4 MiB socket buffer (about 20,000 Prepares) it lost some of them
    await c.waitCommitted(0, before + 45000, 90_000);
    c.resume(2);
    const r = await client;
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(80000);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
    const installed = /snapshot: installed op (\d+)/.exec(c.log(2));
    expect(installed, c.log(2).slice(-2000)).not.toBeNull();
    expect(c.log(0) + c.log(1)).toMatch(/replica 2 asks for ops after \d+ but the log starts at op \d+: sending a snapshot/);
    const s = Number(installed![1]);
    const lines = readFileSync(c.dumpFile(2), 'utf8').split('\n');
    const at = lines.indexOf(`# snapshot ${s}`);
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 1]).toMatch(new RegExp(`^${s + 1} `));
    // and every log is back to its window at the end (the exit line names its first and last op)
    for (const i of [0, 1, 2]) {
      const m = /first op (\d+), last op (\d+)/.exec(c.log(i));
      expect(m, c.log(i).slice(-1000)).not.toBeNull();
      expect(Number(m![2]) - Number(m![1])).toBeLessThan(2000);
    }
  }, 180_000);
});

describe('the relay floor (replica --relay-floor, the bench arm relay-floor)', () => {
  it('replica 0 sends each request to the others and answers after f came back, as a VR leader does; what is not a client request is dropped', async () => {
    const c = cluster(3);
    await c.start(() => ['--relay-floor'], undefined, { dump: false }); // no protocol, nothing to dump
    // first, garbage and a well-formed replica message (a Prepare): both dropped and counted
    // (sent before the client's requests, so handled before them: one socket, in order)
    const sock = createSocket('udp4');
    await new Promise<void>((ok, fail) => {
      sock.once('error', fail);
      sock.bind(0, '127.0.0.1', ok);
    });
    const send = (b: Buffer) => new Promise<void>((ok, fail) => sock.send(b, c.o.addrs[0]!.port, '127.0.0.1', (e) => (e ? fail(e) : ok())));
    await send(Buffer.from('hello'));
    const req = Buffer.alloc(56);
    req.writeUInt32LE(0x42414c45, 0);
    req.writeUInt8(1, 4);
    req.writeUInt8(3, 5); // EL_MSG_PREPARE: only client requests travel the relay
    req.writeBigUInt64LE(99n, 32);
    await send(req);
    sock.close();
    const r = await launcher.run('client0', [join(c.bin, 'client'), '-c', c.configFile, '-n', '3000', '-t', '2', '--echo'], 60_000);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!).completed).toBe(3000);
    await c.stop();
    const line = (i: number) => /relay: rx (\d+), forwarded (\d+), sent (\d+) \(failed (\d+)\), late (\d+), refused (\d+)/.exec(c.log(i))!.slice(1).map(Number);
    const [, fwd, sent0, , late0, refused0] = line(0) as [number, number, number, number, number, number];
    expect(fwd).toBeGreaterThanOrEqual(3000); // forwarded (retries included)
    // replica 0: to both followers, then to the client once (f = 1), each before the client's next request
    expect(sent0).toBe(fwd * 3);
    // each follower sent back what replica 0 sent it, and the second copy back is late; the
    // last request's slower copy may still be on its way when SIGTERM comes (the client is done)
    for (const i of [1, 2]) expect(line(i)[2], `replica ${i}`).toBeGreaterThanOrEqual(fwd - 1);
    for (const i of [1, 2]) expect(line(i)[2], `replica ${i}`).toBeLessThanOrEqual(fwd);
    expect(late0).toBeGreaterThanOrEqual(fwd - 1);
    expect(late0).toBeLessThanOrEqual(fwd);
    expect(refused0).toBe(2);
    expect(c.log(0)).not.toMatch(/view \d+ normal|recovering/); // no protocol ran
  }, 120_000);
});

describe('malformed input on a live cluster', () => {
  it('counts and drops malformed datagrams, keeps serving', async () => {
    const c = cluster(3);
    await c.start();
    const sock = createSocket('udp4');
    const send = (buf: Buffer, i: number) =>
      new Promise<void>((ok, fail) => sock.send(buf, c.o.addrs[i]!.port, '127.0.0.1', (e) => (e ? fail(e) : ok())));
    const hdr = (type: number, replica: number, payloadLen: number, extra = 0) => {
      const b = Buffer.alloc(56 + extra);
      b.writeUInt32LE(0x42414c45, 0);
      b.writeUInt8(1, 4);
      b.writeUInt8(type, 5);
      b.writeUInt8(replica, 7);
      b.writeUInt32LE(payloadLen, 48);
      return b;
    };
    const bad: Buffer[] = [
      Buffer.alloc(0),
      Buffer.from('hello'),
      Buffer.alloc(56, 0xff), // wrong magic
      hdr(0, 0, 0), // type 0
      hdr(42, 0, 0), // type out of range
      hdr(4, 9, 0), // PrepareOK from replica 9 of 3
      hdr(3, 0, 100), // Prepare claiming 100 payload bytes, carrying none
      hdr(3, 0, 4, 4), // Prepare with aux 0 and a junk payload
      hdr(1, 0xff, 3, 3), // Request with a truncated op
    ];
    for (let k = 0; k < 200; k++) bad.push(Buffer.from(Array.from({ length: 56 + (k % 80) }, () => Math.floor(Math.random() * 256))));
    for (let i = 0; i < 3; i++) for (const b of bad) await send(b, i);
    sock.close();
    const r = await c.runClient(['-n', '1000', '-t', '2']);
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
    for (let i = 0; i < 3; i++) {
      expect(c.log(i)).toContain('dropped malformed packet');
      const m = /malformed (\d+)/.exec(c.log(i));
      expect(Number(m?.[1])).toBeGreaterThanOrEqual(bad.length - 5); // loopback does not lose them
    }
  }, 60_000);
});

describe('bad input to the binaries', () => {
  it('names the problem and exits non-zero, starting nothing', async () => {
    const c = cluster(3);
    const run = (bin: string, ...args: string[]) => execa(join(ASAN_BIN, bin), args, { reject: false, timeout: 10_000 });
    const cases: [string, string[], number, RegExp][] = [
      ['replica', [], 2, /missing -c <config>/],
      ['replica', ['-c', c.configFile], 2, /missing -i <index>/],
      ['replica', ['-c', c.configFile, '-i', '3'], 1, /-i 3: the config .* lists replicas 0\.\.2/],
      ['replica', ['-c', c.configFile, '-i', '0', '--drop-rate', '1.5'], 2, /--drop-rate must be a fraction/],
      ['replica', ['-c', c.configFile, '-i', '0', '--fast-reply'], 2, /need --bpf-pin-dir/],
      ['replica', ['-c', join(scratch, 'absent.config'), '-i', '0'], 1, /cannot open config/],
      ['client', ['-c', c.configFile], 2, /exactly one of -n <requests> or -d <seconds>/],
      ['client', ['-c', c.configFile, '-n', '0'], 2, /-n must be a positive request count/],
      ['client', ['-c', c.configFile, '-n', '5', '-t', 'x'], 2, /-t must be 1\.\.1024 threads/],
    ];
    for (const [bin, args, code, msg] of cases) {
      const r = await run(bin, ...args);
      expect(r.exitCode, `${bin} ${args.join(' ')}`).toBe(code);
      expect(r.stderr).toMatch(msg);
    }
  });
});

describe('history checker', () => {
  // the checker itself must be able to fail, or the tests above prove nothing
  const op = (opnum: number, client: string, request: string) => ({ opnum, client, request, op: 'put', key: 'k' });
  it('flags a missing acknowledged op, a divergent log and reordered requests', () => {
    const good = [op(1, '7', '1'), op(2, '7', '2')];
    expect(historyProblems(['7 1', '7 2'], new Map([['a', good], ['b', good.slice(0, 1).concat([op(2, '7', '2')])]]))).toEqual([]);
    expect(historyProblems(['7 1', '7 2', '7 3'], new Map([['a', good]])).join()).toMatch(/missing/);
    expect(historyProblems(['7 1'], new Map([['a', good], ['b', [op(1, '8', '1')]]])).join()).toMatch(/op 1 is 8\/1 put k, a has 7\/1/);
    expect(historyProblems(['7 1', '7 2'], new Map([['a', [op(1, '7', '2'), op(2, '7', '1')]]])).join()).toMatch(/before its earlier/);
    expect(historyProblems([], new Map([['a', [op(1, '7', '1'), op(3, '7', '2')]]])).join()).toMatch(/line 2 has op 3, expected 2/);
  });
  it('a recovered replica dumps from the op after its snapshot: acks below it count if another replica holds them there', () => {
    const full = [op(1, '7', '1'), op(2, '7', '2'), op(3, '7', '3')];
    const recovered = [op(3, '7', '3')];
    expect(historyProblems(['7 1', '7 2', '7 3'], new Map([['a', full], ['b', recovered]]))).toEqual([]);
    // nobody holds 7/4: missing everywhere, the snapshot covers nothing it was not given
    expect(historyProblems(['7 4'], new Map([['a', full], ['b', recovered]])).join()).toMatch(/a: 1 acknowledged.*b: 1 acknowledged/);
    // a recovered log that disagrees at an op it holds is divergence
    expect(historyProblems([], new Map([['a', full], ['b', [op(3, '8', '1')]]])).join()).toMatch(/b: op 3 is 8\/1/);
  });
  it('a follower that caught up by snapshot mid-life may jump to S+1 after its "# snapshot S" line, nowhere else', () => {
    const full = [1, 2, 3, 4, 5].map((i) => op(i, '7', String(i)));
    const caughtUp = parseDump('1 7 1 put k\n# snapshot 4\n5 7 5 put k\n');
    expect(caughtUp.map((o) => o.opnum)).toEqual([1, 5]);
    expect(historyProblems(['7 1', '7 2', '7 3', '7 4', '7 5'], new Map([['a', full], ['b', caughtUp]]))).toEqual([]);
    // the same jump without the line, or to another op than S+1, is a hole
    expect(historyProblems([], new Map([['a', full], ['b', parseDump('1 7 1 put k\n5 7 5 put k\n')]])).join()).toMatch(/b: line 2 has op 5, expected 2/);
    expect(historyProblems([], new Map([['a', full], ['b', parseDump('1 7 1 put k\n# snapshot 3\n5 7 5 put k\n')]])).join()).toMatch(/b: line 2 has op 5, expected 4/);
    // an ack in the gap counts only if another replica holds it there
    expect(missingAcks(['7 3', '7 9'], new Map([['a', full], ['b', caughtUp]])).get('b')).toEqual(['7 9']);
  });
});
