/** src/upstream/scenario.ts: what a course project's Docker scenario says, and what electrode-lab's values change. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UpstreamLab } from '../../src/upstream/patch.js';
import { scenarioChanges, scenarioFacts } from '../../src/upstream/scenario.js';
import { thirdPartyDir } from '../helpers/thirdParty.js';

function lab(n: number): UpstreamLab {
  return {
    n,
    f: (n - 1) / 2,
    replicas: Array.from({ length: n }, (_, i) => ({ index: i, ip: `10.77.0.${10 + i}`, mac: `02:4c:aa:bb:00:0${i}`, port: 12345, ifname: 'eth0' })),
    configPath: '/lab/tree/config.txt',
  };
}

const service = (i: number) => `  r${i}:\n    container_name: r${i}\n    command: sh -c "./bench/replica -c config.txt -m vr -i ${i}"\n    privileged: true\n    volumes:\n      - /sys/fs/bpf:/sys/fs/bpf\n`;

describe('scenario facts and changes on a small hand-written scenario', () => {
  // five replicas, but a MAC table with two real entries and one empty one
  const files = {
    compose: `services:\n${[0, 1, 2, 3, 4].map(service).join('')}  client:\n    command: ./bench/client -c config.txt -m vr -n 10\n`,
    config: 'f 2\n' + [1, 2, 3, 4, 5].map((i) => `replica r${i - 1}:2000${i}`).join('\n') + '\n',
    fastUser: 'const char *eths[FAST_REPLICA_MAX] = {"02:42:ac:13:00:02", "02:42:ac:13:00:03", ""};\nfp = fopen("./config.txt", "r");\n',
    fastCommon: '#define CLUSTER_SIZE 3\n',
    dockerfile: 'RUN make EXTRA_CFLAGS="-DTC_BROADCAST" && make CXXFLAGS="-DTC_BROADCAST" PARANOID=0\n',
  };
  const facts = scenarioFacts(files);

  it('reads services, replica indices, the config, the MAC table and the build flags', () => {
    expect(facts.services.filter((s) => s.role === 'replica').map((s) => s.index)).toEqual([0, 1, 2, 3, 4]);
    expect(facts.services.find((s) => s.name === 'client')?.role).toBe('client');
    expect(facts.services.filter((s) => s.hostBpffs)).toHaveLength(5);
    expect(facts.replicas[4]).toEqual({ host: 'r4', port: 20005 });
    expect(facts.eths).toEqual({ size: 'FAST_REPLICA_MAX', entries: ['02:42:ac:13:00:02', '02:42:ac:13:00:03', ''] });
    expect(facts.clusterSize).toBe(3);
    expect(facts.build).toEqual({ kernFlags: '-DTC_BROADCAST', userFlags: '-DTC_BROADCAST' });
  });

  it('names each consequence: NULL and empty MAC entries, the port, names, sizes, the shared bpffs', () => {
    const lines = scenarioChanges(facts, lab(5));
    const has = (re: RegExp) => expect(lines.some((l) => re.test(l)), `${re} in\n${lines.join('\n')}`).toBe(true);
    has(/^sizes disagree: config.txt 5 replicas \(f 2\), docker-compose 5 replica containers, CLUSTER_SIZE 3, eths\[\] 2 MACs -> all 5/);
    has(/^eths\[2\] is "": .*previous entry's MAC/);
    has(/^eths\[3\] is past the 3 initialisers: a NULL pointer, and sscanf\(NULL, \.\.\.\) segfaults the loader/);
    has(/^eths\[4\] is past/);
    has(/^port 20001-20005 -> 12345: fast_kern.c only handles 12345/);
    has(/ONE follower/);
    has(/^config.txt names replicas by host name \(r0, r1, r2, r3, r4\)/);
    has(/^CLUSTER_SIZE 3 -> 5$/);
    has(/^5 containers mount the HOST's \/sys\/fs\/bpf/);
    has(/TC_BROADCAST only: .*leaderIdx 0 forever/);
    has(/opens \.\/config\.txt relative to its working directory .* -> \/lab\/tree\/config\.txt, checked/);
  });

  it('says nothing about ports when the scenario already uses the kernel port', () => {
    const same = scenarioFacts({ ...files, config: 'f 2\n' + [0, 1, 2, 3, 4].map((i) => `replica 10.0.0.${i}:12345`).join('\n') });
    const lines = scenarioChanges(same, lab(5));
    expect(lines.filter((l) => /port|host name|ONE follower/.test(l))).toEqual([]);
  });
});

const poc = thirdPartyDir('multi-paxos-poc');
const up = thirdPartyDir('electrode-upstream');

describe.skipIf(!existsSync(poc))(`the course project's scenarios (skipped when ${poc} is absent)`, () => {
  it.each([3, 5, 7])('scenario%i: what its files say', (n) => {
    const dir = join(poc, `scenario${n}`);
    const r = (f: string) => readFileSync(join(dir, f), 'utf8');
    const facts = scenarioFacts({ compose: r('docker-compose.yaml'), config: r('config.txt'), fastUser: r('fast_user.c'), fastCommon: r('fast_common.h'), dockerfile: r('Dockerfile') });
    expect(facts.replicas.map((x) => x.host)).toEqual(Array.from({ length: n }, (_, i) => `replica${i + 1}`));
    expect(facts.replicas.map((x) => x.port)).toEqual(Array.from({ length: n }, (_, i) => 10001 + i));
    expect(facts.services.filter((s) => s.role === 'replica').map((s) => [s.hostname, s.index])).toEqual(Array.from({ length: n }, (_, i) => [`replica${i + 1}`, i]));
    expect(facts.services.every((s) => s.privileged && s.hostBpffs)).toBe(true);
    // the scenarios sized their MAC table and CLUSTER_SIZE to n themselves
    expect(facts.eths?.entries).toEqual(Array.from({ length: n }, (_, i) => `02:42:ac:13:00:0${i + 2}`));
    expect(facts.clusterSize).toBe(n);
    expect(facts.configRead).toBe('./config.txt');
    expect(facts.build).toEqual({ kernFlags: '-DTC_BROADCAST', userFlags: '-DTC_BROADCAST' });

    const lines = scenarioChanges(facts, lab(n));
    expect(lines.find((l) => l.startsWith('port '))).toBe(`port 10001-1000${n} -> 12345: fast_kern.c only handles 12345 (XDP checks the destination port, TC the source port), so with the scenario's ports the eBPF side never fired`);
    expect(lines.some((l) => l.startsWith('sizes disagree'))).toBe(false);
    expect(lines.some((l) => /NULL pointer|is ""/.test(l))).toBe(false);
    expect(lines).toContain(`CLUSTER_SIZE ${n} (already right)`);
    expect(lines.some((l) => /^eths\[\] 02:42:ac:13:00:02 .* -> 02:4c:aa:bb:00:00 .*Docker derives/.test(l))).toBe(true);
  });

  it.skipIf(!existsSync(up))('with 5 or 7 replicas, UPSTREAM\'s own MAC table (3 real entries) would read "" and then NULL', () => {
    const fastUser = readFileSync(join(up, 'xdp-handler', 'fast_user.c'), 'utf8');
    const dir = join(poc, 'scenario7');
    const r = (f: string) => readFileSync(join(dir, f), 'utf8');
    const facts = scenarioFacts({ compose: r('docker-compose.yaml'), config: r('config.txt'), fastUser, fastCommon: r('fast_common.h') });
    const lines = scenarioChanges(facts, lab(7));
    expect(lines.filter((l) => /^eths\[[34]\] is "":/.test(l))).toHaveLength(2);
    expect(lines.filter((l) => /^eths\[[56]\] is past the 5 initialisers/.test(l))).toHaveLength(2);
  });
});
