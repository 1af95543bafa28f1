/**
 * What a course project's Docker scenario (multi-paxos-poc scenario3/5/7)
 * says in its own files, and what electrode-lab's generated values change
 * (pure: texts in). The scenario folders hold docker-compose.yaml,
 * config.txt, fast_user.c, fast_common.h and a Dockerfile; their fast_kern.c
 * is upstream's, so its port comes in separately (kernelPorts()).
 */
import { parse as parseYaml } from 'yaml';
import { UPSTREAM_PORT, UpstreamLab } from './patch.js';

export interface ScenarioFiles {
  compose: string;
  config: string;
  fastUser: string;
  fastCommon: string;
  dockerfile?: string;
}

export interface ScenarioService {
  name: string;
  hostname: string;
  role: 'replica' | 'client' | 'other';
  /** The `-i` of a replica's command. */
  index?: number;
  privileged: boolean;
  /** Mounts the HOST's /sys/fs/bpf (one bpffs shared by every container). */
  hostBpffs: boolean;
  command?: string;
}

export interface ScenarioFacts {
  services: ScenarioService[];
  f?: number;
  /** config.txt `replica host:port` lines, in index order. */
  replicas: { host: string; port: number }[];
  /** fast_user.c's MAC table: the size expression and the literal entries ("" included). */
  eths?: { size: string; entries: string[] };
  /** The path the loader fopen()s. */
  configRead?: string;
  clusterSize?: number;
  /** `make EXTRA_CFLAGS=...` (eBPF side) and `make CXXFLAGS=...` (replica) from the Dockerfile. */
  build: { kernFlags?: string; userFlags?: string };
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function asRecord(x: unknown): Record<string, unknown> {
  return x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : {};
}

export function scenarioFacts(files: ScenarioFiles): ScenarioFacts {
  const compose = asRecord(parseYaml(files.compose));
  const services: ScenarioService[] = Object.entries(asRecord(compose.services)).map(([name, raw]) => {
    const s = asRecord(raw);
    const command = typeof s.command === 'string' ? s.command : Array.isArray(s.command) ? s.command.join(' ') : undefined;
    const volumes = Array.isArray(s.volumes) ? s.volumes.map(String) : [];
    const idx = command ? /bench\/replica\b.*?\s-i\s+(\d+)/.exec(command)?.[1] : undefined;
    const role = command && /bench\/replica\b/.test(command) ? 'replica' : command && /bench\/client\b/.test(command) ? 'client' : 'other';
    return {
      name,
      hostname: String(s.container_name ?? s.hostname ?? name),
      role,
      index: idx === undefined ? undefined : Number(idx),
      privileged: s.privileged === true,
      hostBpffs: volumes.some((v) => /^\/sys\/fs\/bpf\/?:/.test(v)),
      command,
    };
  });

  const fLine = /^[ \t]*f[ \t]+(\d+)/m.exec(files.config)?.[1];
  const replicas = [...files.config.matchAll(/^[ \t]*replica[ \t]+([^:\s]+):(\d+)/gm)].map((m) => ({ host: m[1] as string, port: Number(m[2]) }));

  const em = /const[ \t]+char[ \t]*\*[ \t]*eths\[([^\]]*)\][ \t]*=[ \t]*\{([^}]*)\};/.exec(files.fastUser);
  const eths = em ? { size: (em[1] as string).trim(), entries: [...(em[2] as string).matchAll(/"([^"]*)"/g)].map((m) => m[1] as string) } : undefined;
  const configRead = /fopen\("([^"]*)",[ \t]*"r"\)/.exec(files.fastUser)?.[1];
  const cs = /^[ \t]*#define[ \t]+CLUSTER_SIZE[ \t]+(\d+)/m.exec(files.fastCommon)?.[1];
  const df = files.dockerfile ?? '';
  return {
    services,
    f: fLine === undefined ? undefined : Number(fLine),
    replicas,
    eths,
    configRead,
    clusterSize: cs === undefined ? undefined : Number(cs),
    build: { kernFlags: /EXTRA_CFLAGS="([^"]*)"/.exec(df)?.[1], userFlags: /CXXFLAGS="([^"]*)"/.exec(df)?.[1] },
  };
}

function spanOf(nums: number[]): string {
  const u = [...new Set(nums)];
  if (u.length === 1) return String(u[0]);
  const sorted = [...u].sort((a, b) => a - b);
  const contiguous = sorted.every((x, i) => i === 0 || x === (sorted[i - 1] as number) + 1);
  return contiguous ? `${sorted[0]}-${sorted[sorted.length - 1]}` : sorted.join(',');
}

/**
 * Human lines: what the scenario's own files say that electrode-lab's
 * values for `lab` replace, and why it mattered. `kernPorts` are the ports
 * the scenario's fast_kern.c checks (upstream's: 12345 twice).
 */
export function scenarioChanges(facts: ScenarioFacts, lab: UpstreamLab, kernPorts: number[] = [UPSTREAM_PORT, UPSTREAM_PORT]): string[] {
  const out: string[] = [];
  const n = facts.replicas.length;
  const rs = [...lab.replicas].sort((a, b) => a.index - b.index);
  const userFlags = facts.build.userFlags ?? '';
  const tcBroadcast = /-DTC_BROADCAST\b/.test(userFlags);

  const replicaServices = facts.services.filter((s) => s.role === 'replica');
  const sizes = [
    `config.txt ${n} replicas (f ${facts.f})`,
    `docker-compose ${replicaServices.length} replica containers`,
    `CLUSTER_SIZE ${facts.clusterSize}`,
    `eths[] ${facts.eths?.entries.filter((e) => e !== '').length ?? 0} MACs`,
  ];
  const counts = [n, replicaServices.length, facts.clusterSize, facts.eths?.entries.filter((e) => e !== '').length ?? 0];
  if (new Set(counts).size > 1) out.push(`sizes disagree: ${sizes.join(', ')} -> all ${lab.n}, from one lab plan`);
  if (n !== lab.n) out.push(`replicas ${n} -> ${lab.n}`);

  const names = facts.replicas.filter((r) => !IPV4.test(r.host)).map((r) => r.host);
  if (names.length) {
    out.push(
      `config.txt names replicas by host name (${names.join(', ')}) -> ${rs.map((r) => r.ip).join(', ')}: the replicas resolve names (getaddrinfo), but the loader (fast_user.c) parses each with inet_pton, which fails on a name and leaves the address uninitialised, so the kernel's peer table (map_configure) held no valid IP`,
    );
  }

  const kp = [...new Set(kernPorts)];
  const ports = facts.replicas.map((r) => r.port);
  const labPort = rs[0]?.port ?? UPSTREAM_PORT;
  if (ports.some((p) => !kp.includes(p))) {
    out.push(
      `port ${spanOf(ports)} -> ${labPort}: fast_kern.c only handles ${kp.join(',')} (XDP checks the destination port, TC the source port), so with the scenario's ports the eBPF side never fired`,
    );
    if (tcBroadcast) {
      out.push(
        'built with -DTC_BROADCAST, the leader sends each Prepare/Commit to ONE follower and leaves the copies to the TC program (lib/transportcommon.h: break after the first send when the broadcast bit is set); with the TC program idle the other followers heard nothing, timed out (5 s) and started view changes, and a view change runs the DoViewChange code that keeps a pointer into a loop-local copy (vr/replica.cc, latestMsg = &x): the likely segfault of the replica that leads the next view',
      );
    }
  } else if (ports.some((p) => p !== labPort)) {
    out.push(`port ${spanOf(ports)} -> ${labPort}`);
  }

  if (facts.eths) {
    const e = facts.eths.entries;
    for (let i = 0; i < n; i++) {
      if (i >= e.length) {
        out.push(`eths[${i}] is past the ${e.length} initialisers: a NULL pointer, and sscanf(NULL, ...) segfaults the loader before anything is attached -> ${rs[i]?.mac ?? 'a MAC from the plan'}`);
      } else if (e[i] === '') {
        out.push(`eths[${i}] is "": sscanf reads nothing and replica ${i} silently gets the previous entry's MAC (conf is reused) -> ${rs[i]?.mac ?? 'a MAC from the plan'}`);
      }
    }
    const real = e.slice(0, n).filter((x) => x !== '');
    const planMacs = rs.map((r) => r.mac.toLowerCase());
    if (real.length && real.some((m, i) => m.toLowerCase() !== planMacs[i])) {
      const docker = real.every((m) => /^02:42:/i.test(m));
      out.push(
        `eths[] ${real.join(' ')} -> ${planMacs.join(' ')}${docker ? ": Docker derives a container's MAC from its IP, and the compose file fixes neither, so the table was a guess that start order and the network's subnet could break" : ''}`,
      );
    }
  }

  if (facts.clusterSize !== undefined && facts.clusterSize !== lab.n) out.push(`CLUSTER_SIZE ${facts.clusterSize} -> ${lab.n}`);
  else if (facts.clusterSize !== undefined) out.push(`CLUSTER_SIZE ${facts.clusterSize} (already right)`);

  if (facts.configRead !== undefined) {
    out.push(`the loader opens ${facts.configRead} relative to its working directory and does not check fopen -> ${lab.configPath ?? 'an absolute path'}, checked`);
  }

  const shared = facts.services.filter((s) => s.hostBpffs);
  if (shared.length > 1) {
    out.push(
      `${shared.length} containers mount the HOST's /sys/fs/bpf, so every loader pinned paxos_prepare_buffer, paxos_request_buffer and paxos_ctr_state in ONE bpffs: unless their start.sh (not in the snapshot) removed them first, the second loader's assert(bpf_obj_pin(...) == 0) aborts it before it attaches anything -> one bpffs per node, in the node's own mount namespace`,
    );
  }

  if (tcBroadcast && !/-DFAST_(REPLY|QUORUM_PRUNE)\b/.test(userFlags)) {
    out.push(
      'CXXFLAGS has TC_BROADCAST only: the replica then never opens the pins nor writes the kernel control state (ModifyKernelState is compiled only with FAST_REPLY or FAST_QUORUM_PRUNE), so the TC program reads leaderIdx 0 forever, right in view 0 only',
    );
  }
  if (facts.build.kernFlags !== undefined && !/-DFAST_(REPLY|QUORUM_PRUNE)\b/.test(facts.build.kernFlags)) {
    out.push(`EXTRA_CFLAGS="${facts.build.kernFlags}" for the eBPF side: fast_kern.c has no TC_BROADCAST switch (the TC program is always built); only FAST_REPLY and FAST_QUORUM_PRUNE change it`);
  }
  return out;
}
