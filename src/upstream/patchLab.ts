/**
 * The lab's values as upstream can take them: checked first (IPv4 literals,
 * MACs, one UDP port for all, at most 32 replicas, C-safe paths), then
 * written in upstream's own formats (config.txt, the `eths[]` MAC table, a
 * checked fopen, the prelude that replaces a kernel tree's headers). Pure.
 */
import { Patcher } from './patcher.js';
import { UPSTREAM_PORT, UpstreamLab, UpstreamReplica } from './patchModel.js';

export const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
/** A path we can put into a C string literal as is. */
export const C_PATH = /^\/[A-Za-z0-9_.\/+-]*$/;

/** Lab checks that do not need the files. */
export function checkLab(p: Patcher, lab: UpstreamLab): UpstreamReplica[] {
  const rs = [...lab.replicas].sort((a, b) => a.index - b.index);
  if (lab.n !== 2 * lab.f + 1) p.lab('UPSTREAM_LAB_SIZE', `n=${lab.n}`, `upstream VR needs n = 2f+1 replicas; f=${lab.f} gives ${2 * lab.f + 1}`);
  if (rs.length !== lab.n) p.lab('UPSTREAM_LAB_SIZE', `replicas=${rs.length}`, `n=${lab.n} but ${rs.length} replicas were given`);
  rs.forEach((r, i) => {
    if (r.index !== i) p.lab('UPSTREAM_LAB_INDEX', `replica${r.index}`, `replica indices must be 0..${lab.n - 1}, each once (config.txt order is the index)`);
    if (!IPV4.test(r.ip)) p.lab('UPSTREAM_LAB_IP', `replica${r.index}.ip=${r.ip}`, 'the loader parses addresses with inet_pton: an IPv4 literal is needed, not a name');
    if (!MAC.test(r.mac)) p.lab('UPSTREAM_LAB_MAC', `replica${r.index}.mac=${r.mac}`, 'not a MAC address (xx:xx:xx:xx:xx:xx)');
    if (!Number.isInteger(r.port) || r.port < 1 || r.port > 65535) p.lab('UPSTREAM_LAB_PORT', `replica${r.index}.port=${r.port}`, 'not a UDP port');
    if (!/^[^\s/]{1,15}$/.test(r.ifname)) p.lab('UPSTREAM_LAB_IFNAME', `replica${r.index}.ifname=${r.ifname}`, 'not an interface name (1-15 characters, no spaces or slashes)');
  });
  const ports = [...new Set(rs.map((r) => r.port))];
  if (ports.length > 1) {
    p.lab(
      'UPSTREAM_PORTS_DIFFER',
      `ports=${ports.join(',')}`,
      'xdp-handler/fast_kern.c compares the UDP port with ONE constant (XDP: destination, TC: source), so replicas on different ports are never seen by the eBPF side',
      `give every upstream replica the same port (e.g. ${UPSTREAM_PORT}); each node has its own IP, so the same port is fine`,
    );
  }
  // HandlePrepareOK keeps the PrepareOK senders in a __u32 bitset (1 << replicaIdx)
  if (lab.n > 32) p.lab('UPSTREAM_LAB_SIZE', `n=${lab.n}`, 'fast_kern.c counts PrepareOKs in a 32-bit bitset: at most 32 replicas');
  for (const [what, path] of [
    ['pinDir', lab.pinDir],
    ['configPath', lab.configPath],
  ] as const) {
    if (path !== undefined && !C_PATH.test(path)) p.lab('UPSTREAM_LAB_PATH', `${what}=${path}`, 'must be an absolute path of letters, digits and _ . / + - (it goes into a C string)');
  }
  return rs;
}

export function configText(lab: UpstreamLab, rs: UpstreamReplica[]): string {
  return [`f ${lab.f}`, ...rs.map((r) => `replica ${r.ip}:${r.port}`)].join('\n') + '\n';
}

export function ethsTable(size: string, rs: UpstreamReplica[], ind: string): string {
  const rows = rs.map((r) => `${ind}\t"${r.mac.toLowerCase()}", /* replica ${r.index} ${r.ip} */`);
  return [`const char *eths[${size}] = {`, `${ind}\t/* electrode-lab: one MAC per replica, in config.txt order, from the lab plan */`, ...rows, `${ind}};`].join('\n');
}

export function fopenChecked(path: string, ind: string): string {
  return [
    `fp = fopen("${path}", "r");`,
    `${ind}if (fp == NULL) { /* electrode-lab: upstream read on from a NULL FILE* */`,
    `${ind}\tfprintf(stderr, "Error: cannot open %s: %s\\n", "${path}", strerror(errno));`,
    `${ind}\texit(1);`,
    `${ind}}`,
  ].join('\n');
}

/** Stands in for what the kernel tree's headers gave fast_kern.c (NOTES.md, "eBPF side"). */
export const KERN_PRELUDE = [
  '/* electrode-lab: built with clang -target bpf against the UAPI headers and',
  ' * libbpf 1.x instead of a prepared kernel tree; these replace what the',
  ' * kernel headers provided (IPPROTO_UDP, TC_ACT_*, htons, memcpy, u32). */',
  '#include <linux/in.h>',
  '#include <linux/pkt_cls.h>',
  '#include <bpf/bpf_helpers.h>',
  '#include <bpf/bpf_endian.h>',
  '#ifndef htons',
  '#define htons(x) bpf_htons(x)',
  '#endif',
  '#ifndef memcpy',
  '#define memcpy __builtin_memcpy',
  '#endif',
  'typedef __u32 u32;',
].join('\n');
