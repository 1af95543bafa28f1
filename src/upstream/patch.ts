/**
 * The patch electrode-lab applies to a COPY of the user's upstream Electrode
 * tree (pure: texts in, texts and a unified diff out).
 *
 * Upstream hard-codes what a lab decides: the replica list (config.txt), the
 * MAC table (`eths[]` in xdp-handler/fast_user.c), `CLUSTER_SIZE`
 * (fast_common.h), the UDP port both eBPF programs compare with (fast_kern.c),
 * the config path the loader opens and the pin paths. Each value is written
 * from the lab description here; every edit is anchored on what the file
 * contains and a missing anchor is reported (all of them, then stop) instead
 * of silently leaving the user's value in place (patcher.ts). The texts of the
 * edits come from the templates in patchLab.ts; anchors quote only what is
 * needed to find a spot.
 *
 * With `libbpf1` (default) the tree is also made to build with clang
 * -target bpf against the UAPI headers and libbpf 1.x instead of a prepared
 * Linux 5.8 source tree: legacy `struct bpf_map_def SEC("maps")` maps become
 * BTF maps, program sections get names libbpf and bpftool know, and the
 * loader's removed libbpf 0.x calls get their 1.x replacements
 * (src/upstream/NOTES.md lists each with the error it fixes).
 */
import { unifiedDiff } from './diff.js';
import { checkLab, configText, ethsTable, fopenChecked, KERN_PRELUDE } from './patchLab.js';
import { FileText, Patcher, reEscape, topLevelItems } from './patcher.js';
import { PatchOptions, UPSTREAM_FILES, UPSTREAM_PIN_DIR, UPSTREAM_PINS, UPSTREAM_PORT, UpstreamFile, UpstreamLab, UpstreamPatch, UpstreamPatchError, UpstreamReplica, UpstreamSources } from './patchModel.js';

export * from './patchModel.js';

function patchConfig(p: Patcher, text: string, lab: UpstreamLab, rs: UpstreamReplica[]): string {
  const file = UPSTREAM_FILES.config;
  const f = /^[ \t]*f[ \t]+(\d+)[ \t]*$/m.exec(text);
  const olds = [...text.matchAll(/^[ \t]*replica[ \t]+(\S+)/gm)].map((m) => m[1] as string);
  if (!f || olds.length === 0) {
    p.anchorMissing(file, "an `f <n>` line and `replica <host>:<port>` lines", 'config.txt does not look like a specpaxos configuration');
    return text;
  }
  const now = rs.map((r) => `${r.ip}:${r.port}`);
  p.note(file, `f ${f[1]} -> ${lab.f}; replicas ${olds.join(' ')} -> ${now.join(' ')}`);
  return configText(lab, rs);
}

function patchCommon(p: Patcher, text: string, lab: UpstreamLab): { text: string; replicaMax?: number } {
  const t = new FileText(p, UPSTREAM_FILES.common, text);
  const old = /^[ \t]*#define[ \t]+CLUSTER_SIZE[ \t]+(\d+)/m.exec(text)?.[1];
  t.edit(/^([ \t]*#define[ \t]+CLUSTER_SIZE[ \t]+)(\d+)/gm, { anchor: '`#define CLUSTER_SIZE <n>`', why: 'the cluster size both eBPF programs and the quorum size use', count: 1, what: `CLUSTER_SIZE ${old} -> ${lab.n}` }, (m) => `${m[1]}${lab.n}`);
  const max = /^[ \t]*#define[ \t]+FAST_REPLICA_MAX[ \t]+(\d+)/m.exec(text)?.[1];
  return { text: t.text, replicaMax: max === undefined ? undefined : Number(max) };
}

function patchUser(p: Patcher, text: string, lab: UpstreamLab, rs: UpstreamReplica[], replicaMax: number | undefined, opts: Required<Pick<PatchOptions, 'libbpf1'>>): string {
  const t = new FileText(p, UPSTREAM_FILES.user, text);
  const file = t.file;

  // the MAC table: one entry per replica; its size must hold n entries
  const eths = /const[ \t]+char[ \t]*\*[ \t]*eths\[([^\]]*)\][ \t]*=[ \t]*\{([^}]*)\};/g;
  const m0 = [...text.matchAll(eths)][0];
  const oldCount = m0 ? (m0[2] as string).split(',').filter((s) => /"[^"]+"/.test(s)).length : 0;
  let size = (m0?.[1] ?? '').trim();
  if (m0) {
    if (/^\d+$/.test(size)) {
      if (Number(size) < lab.n) size = String(lab.n);
    } else if (size === 'FAST_REPLICA_MAX') {
      if (replicaMax === undefined) p.anchorMissing(UPSTREAM_FILES.common, '`#define FAST_REPLICA_MAX <n>`', 'eths[] is sized by it');
      else if (replicaMax < lab.n) p.lab('UPSTREAM_LAB_SIZE', `n=${lab.n}`, `FAST_REPLICA_MAX is ${replicaMax} (eths[] and map_configure are that big)`, `raise FAST_REPLICA_MAX in fast_common.h`);
    } else if (size !== '' && size !== 'CLUSTER_SIZE') {
      p.anchorMissing(file, 'eths[] sized by a number, CLUSTER_SIZE or FAST_REPLICA_MAX', `it is sized by \`${size}\`, which electrode-lab cannot check`);
    }
  }
  t.edit(eths, { anchor: '`const char *eths[...] = {...};`', why: 'the MAC table the loader copies into map_configure', count: 1, what: `eths[] ${oldCount} MACs -> ${lab.n} from the lab plan${m0 && size !== (m0[1] ?? '').trim() ? ` (size ${m0[1]} -> ${size})` : ''}` }, (m) =>
    ethsTable(size, rs, t.indentAt(m.index)),
  );

  // %x stores an unsigned int into each char of conf.eth: the last one writes 3 bytes past the struct
  t.edit(
    /sscanf\([ \t]*eths\[i\][ \t]*,[ \t]*"%x:%x:%x:%x:%x:%x"[ \t]*,([^;]*)\);/g,
    { anchor: '`sscanf(eths[i], "%x:%x:%x:%x:%x:%x", ...)`', why: 'the MAC parse', count: 1, done: /"%hhx:%hhx:%hhx:%hhx:%hhx:%hhx"/, what: 'MAC parse %x -> %hhx (each %x wrote 4 bytes into a char; the 6th overran conf by 3 bytes)' },
    (m) => {
      const args = topLevelItems(m[1] as string);
      if (args.length !== 6) p.anchorMissing(file, 'six conf.eth arguments to the MAC sscanf', `found ${args.length}`);
      return `sscanf(eths[i], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", ${args.map((a) => `(unsigned char *)${a}`).join(', ')});`;
    },
  );

  // the config path: absolute, and checked
  const oldPath = /fp[ \t]*=[ \t]*fopen\("([^"]*)",[ \t]*"r"\);/.exec(text)?.[1];
  const path = lab.configPath ?? oldPath ?? '';
  // a tree patched before already has the check: only the path changes then
  t.edit(/fp[ \t]*=[ \t]*fopen\("([^"]*)",[ \t]*"r"\);(\n[ \t]*if \(fp == NULL\) \{[^\n]*\n[^\n]*"([^"]*)", strerror\(errno\)\);)?/g, { anchor: '`fp = fopen("<path>", "r");`', why: 'where the loader reads config.txt', count: 1, what: `config path ${oldPath} -> ${path}, and a NULL check` }, (m) =>
    m[2] === undefined ? fopenChecked(path, t.indentAt(m.index)) : (m[0] as string).split(`"${m[1]}"`).join(`"${path}"`).split(`"${m[3]}", strerror`).join(`"${path}", strerror`),
  );

  if (lab.pinDir !== undefined && lab.pinDir.replace(/\/+$/, '') !== UPSTREAM_PIN_DIR) {
    const dir = lab.pinDir.replace(/\/+$/, '');
    const at = reEscape(dir);
    t.edit(/(#define[ \t]+BPF_SYSFS_ROOT[ \t]+)"\/sys\/fs\/bpf"/g, { anchor: '`#define BPF_SYSFS_ROOT "/sys/fs/bpf"`', why: 'the folder the program pin goes to', count: 1, done: new RegExp(`#define[ \\t]+BPF_SYSFS_ROOT[ \\t]+"${at}"`), what: `BPF_SYSFS_ROOT -> ${dir}` }, (m) => `${m[1]}"${dir}"`);
    for (const pin of UPSTREAM_PINS) {
      t.edit(new RegExp(`/sys/fs/bpf/${pin}\\b`, 'g'), { anchor: `\`/sys/fs/bpf/${pin}\``, why: 'a pin path', count: 'some', done: new RegExp(`${at}/${pin}\\b`), what: `pin ${pin} -> ${dir}/${pin}` }, () => `${dir}/${pin}`);
    }
  }

  t.text = patchUserToolchain(p, t.text, opts);
  return t.text;
}

/** The loader's libbpf 0.x calls -> 1.x (NOTES.md lists each with its error); nothing else changes. */
function patchUserToolchain(p: Patcher, text: string, opts: Required<Pick<PatchOptions, 'libbpf1'>>): string {
  const t = new FileText(p, UPSTREAM_FILES.user, text);
  if (opts.libbpf1) {
    const loaded = /bpf_object__load\([ \t]*obj[ \t]*\)/;
    if (!/#include[ \t]*<net\/if\.h>/.test(text)) {
      t.edit(/#include[ \t]*<sys\/socket\.h>\n/g, { anchor: '`#include <sys/socket.h>`', why: 'where <net/if.h> (if_nametoindex) goes', count: 1, what: 'include <net/if.h> for if_nametoindex' }, (m) => `${m[0]}#include <net/if.h>\n`);
    }
    t.edit(/^[ \t]*struct[ \t]+bpf_object_load_attr[ \t]+\w+;[ \t]*\n/gm, { anchor: '`struct bpf_object_load_attr load_attr;`', why: 'libbpf 1.x removed this struct', count: 1, done: loaded, what: 'drop struct bpf_object_load_attr (removed in libbpf 1.0)' }, () => '');
    t.edit(/^[ \t]*load_attr\.\w+[ \t]*=[^;\n]*;[ \t]*\n/gm, { anchor: '`load_attr.<field> = ...;`', why: 'libbpf 1.x removed bpf_object__load_xattr', count: 'some', done: loaded, what: 'drop the load_attr fields' }, () => '');
    t.edit(/bpf_object__load_xattr\([ \t]*&load_attr[ \t]*\)/g, { anchor: '`bpf_object__load_xattr(&load_attr)`', why: 'removed in libbpf 1.0', count: 1, done: loaded, what: 'bpf_object__load_xattr -> bpf_object__load' }, () => 'bpf_object__load(obj)');
    t.edit(
      /^([ \t]*)([^\n=]*?\S)[ \t]*=[ \t]*bpf_object__find_program_by_title\([ \t]*(\w+)[ \t]*,[ \t]*([^;\n]*?)[ \t]*\);/gm,
      { anchor: '`<prog> = bpf_object__find_program_by_title(obj, <name>);`', why: 'removed in libbpf 1.0', count: 1, done: /bpf_object__find_program_by_name\(/, what: 'find_program_by_title(<section>) -> find_program_by_name(<section>_main)' },
      (m) => {
        const [ind, lhs, obj, name] = [m[1], m[2], m[3], m[4]];
        return [
          `${ind}{ /* electrode-lab: libbpf 1.x finds programs by function name; upstream names them <section>_main */`,
          `${ind}\tchar fn_name[PATH_MAX];`,
          `${ind}\tsnprintf(fn_name, sizeof(fn_name), "%s_main", ${name});`,
          `${ind}\t${lhs} = bpf_object__find_program_by_name(${obj}, fn_name);`,
          `${ind}}`,
        ].join('\n');
      },
    );
    t.edit(/bpf_program__(pin|unpin)_instance\(([^,()]+),([^,()]+),[ \t]*0[ \t]*\)/g, { anchor: '`bpf_program__pin_instance(prog, path, 0)`', why: 'removed in libbpf 1.0', count: 'some', done: /bpf_program__pin\(/, what: 'bpf_program__(un)pin_instance -> bpf_program__(un)pin' }, (m) =>
      `bpf_program__${m[1]}(${(m[2] as string).trim()}, ${(m[3] as string).trim()})`,
    );
    t.edit(/bpf_set_link_xdp_fd\(([^,()]+),([^,()]+),([^,()]+)\)/g, { anchor: '`bpf_set_link_xdp_fd(ifindex, fd, flags)`', why: 'removed in libbpf 1.0', count: 'some', done: /bpf_xdp_attach\(/, what: 'bpf_set_link_xdp_fd -> bpf_xdp_attach / bpf_xdp_detach' }, (m) => {
      const [ifx, fd, flags] = [(m[1] as string).trim(), (m[2] as string).trim(), (m[3] as string).trim()];
      return fd === '-1' ? `bpf_xdp_detach(${ifx}, ${flags}, NULL)` : `bpf_xdp_attach(${ifx}, ${fd}, ${flags}, NULL)`;
    });
  }
  return t.text;
}

/** The program names the loader looks up: `{"fastPaxos", BPF_PROG_TYPE_XDP, ...}` rows of progs[]. */
export function loaderPrograms(userText: string): string[] {
  return [...userText.matchAll(/\{[ \t]*"(\w+)"[ \t]*,[ \t]*BPF_PROG_TYPE_\w+/g)].map((m) => m[1] as string);
}

/** The ports fast_kern.c compares with (`htons(<digits>)`), in file order. */
export function kernelPorts(kernText: string): number[] {
  return [...kernText.matchAll(/htons\([ \t]*(\d+)[ \t]*\)/g)].map((m) => Number(m[1]));
}

function patchKern(p: Patcher, text: string, port: number | undefined, programs: string[], opts: Required<Pick<PatchOptions, 'libbpf1'>>): string {
  const t = new FileText(p, UPSTREAM_FILES.kern, text);
  const file = t.file;

  // every program the loader looks up must exist as SEC("<name>") int <name>_main(...)
  for (const name of programs) {
    const withSec = new RegExp(`SEC\\("${name}"\\)\\s*\\n\\s*int\\s+${name}_main\\s*\\(`);
    const renamed = new RegExp(`SEC\\("(xdp|tc)"\\)\\s*\\n\\s*int\\s+${name}_main\\s*\\(`);
    if (!withSec.test(text) && !(opts.libbpf1 && renamed.test(text))) {
      p.anchorMissing(file, `\`SEC("${name}") int ${name}_main(\``, `fast_user.c's progs[] loads a program "${name}"`);
    }
  }

  // ONE port in both programs: XDP checks the destination, TC the source
  const olds = kernelPorts(text);
  const old = olds[0];
  if (port !== undefined) t.edit(
    /^.*htons\([ \t]*\d+[ \t]*\).*$/gm,
    { anchor: '`htons(<port>)` twice (XDP destination check, TC source check)', why: 'the UDP port both eBPF programs compare with', count: 2, what: old === port ? `port ${port} (unchanged)` : `port ${old} -> ${port} in both programs` },
    (m) => (m[0] as string).replaceAll(String(old), String(port)),
  );
  if (port !== undefined && olds.length === 2 && olds[0] !== olds[1]) p.anchorMissing(file, 'the same port in both `htons(<port>)` checks', `found ${olds.join(' and ')}`);

  if (opts.libbpf1) {
    if (!t.text.includes(KERN_PRELUDE)) {
      t.edit(/#include[ \t]*["<][^">\n]*bpf_helpers\.h[">]/g, { anchor: '`#include "linux/tools/lib/bpf/bpf_helpers.h"`', why: 'the kernel tree path of bpf_helpers.h', count: 1, what: 'bpf_helpers.h from libbpf-dev, plus the UAPI stand-ins for kernel headers' }, () => KERN_PRELUDE);
    }
    t.edit(
      /struct[ \t]+bpf_map_def[ \t]+SEC\("maps"\)[ \t]+(\w+)[ \t]*=[ \t]*\{([^}]*)\};/g,
      { anchor: '`struct bpf_map_def SEC("maps") <name> = {...};`', why: 'legacy maps, which libbpf 1.x refuses', count: 'some', done: /SEC\("\.maps"\)/, what: 'legacy SEC("maps") maps -> BTF-defined SEC(".maps") maps' },
      (m) => {
        const fields = topLevelItems(m[2] as string).map((it) => /^\.(\w+)[ \t]*=[ \t]*([\s\S]+)$/.exec(it));
        if (fields.some((x) => !x)) p.anchorMissing(file, `\`.field = value\` items in map ${m[1]}`, 'a map definition electrode-lab cannot read');
        const rows = fields.filter((x): x is RegExpExecArray => !!x).map((x) => `\t__uint(${x[1]}, ${(x[2] as string).trim()});`);
        return ['struct {', ...rows, `} ${m[1]} SEC(".maps");`].join('\n');
      },
    );
    if (/SEC\("maps"\)/.test(t.text)) p.anchorMissing(file, 'only `struct bpf_map_def SEC("maps") x = {...};` legacy maps', 'a SEC("maps") definition of another shape is left');
    t.edit(
      /SEC\("(\w+)"\)([ \t]*\n[ \t]*int[ \t]+\w+[ \t]*\([ \t]*struct[ \t]+(xdp_md|__sk_buff)[ \t]*\*)/g,
      { anchor: '`SEC("<name>") int <name>_main(struct xdp_md *` / `(struct __sk_buff *`', why: 'program sections', count: 'some', what: 'program sections -> SEC("xdp") / SEC("tc") (libbpf 1.x and bpftool infer the type from them)' },
      (m) => {
        const sec = m[1] as string;
        if (sec === 'xdp' || sec === 'tc') return m[0] as string;
        return `SEC("${m[3] === 'xdp_md' ? 'xdp' : 'tc'}")${m[2]}`;
      },
    );
  }
  return t.text;
}

function patchReplica(p: Patcher, text: string, dir: string): string {
  const t = new FileText(p, UPSTREAM_FILES.replica, text);
  for (const pin of ['paxos_prepare_buffer', 'paxos_ctr_state', 'paxos_request_buffer']) {
    t.edit(new RegExp(`"/sys/fs/bpf/${pin}"`, 'g'), { anchor: `\`bpf_obj_get("/sys/fs/bpf/${pin}")\``, why: 'the replica opens the loader pins here', count: 'some', done: new RegExp(`"${reEscape(dir)}/${pin}"`), what: `opens ${dir}/${pin}` }, () => `"${dir}/${pin}"`);
  }
  return t.text;
}

function patchMakefile(p: Patcher, text: string): string {
  const t = new FileText(p, UPSTREAM_FILES.makefile, text);
  t.edit(/^(CFLAGS[ \t]*:?=.*?)[ \t]*-DNASSERT\b/gm, { anchor: '`CFLAGS := -DNASSERT ...`', why: 'upstream compiles ASSERT() out', count: 1, done: /^CFLAGS[ \t]*:?=(?!.*-DNASSERT)/m, what: 'drop -DNASSERT: a failed ASSERT() panics with file:line instead of running on' }, (m) => m[1] as string);
  return t.text;
}

/**
 * The patched texts and their unified diff. Throws UpstreamPatchError with
 * every missing anchor and every lab value upstream cannot take.
 */
export function upstreamPatch(sources: UpstreamSources, lab: UpstreamLab, options: PatchOptions = {}): UpstreamPatch {
  const opts = { libbpf1: options.libbpf1 ?? true, asserts: options.asserts ?? false, values: options.values ?? true };
  const p = new Patcher();
  const rs = opts.values ? checkLab(p, lab) : [...lab.replicas].sort((a, b) => a.index - b.index);
  const need: UpstreamFile[] = [UPSTREAM_FILES.config, UPSTREAM_FILES.user, UPSTREAM_FILES.common, UPSTREAM_FILES.kern];
  const pinMoved = opts.values && lab.pinDir !== undefined && lab.pinDir.replace(/\/+$/, '') !== UPSTREAM_PIN_DIR;
  if (pinMoved) need.push(UPSTREAM_FILES.replica);
  if (opts.asserts) need.push(UPSTREAM_FILES.makefile);
  for (const f of need) if (sources[f] === undefined) p.lab('UPSTREAM_FILE_MISSING', f, 'this file is needed for the patch', 'pass the text of every file of UPSTREAM_FILES that the options touch');
  if (p.diagnostics.length) throw new UpstreamPatchError(p.diagnostics, p.missing);

  const out: UpstreamSources = { ...sources };
  const user = sources[UPSTREAM_FILES.user] as string;
  let port: number;
  if (opts.values) {
    out[UPSTREAM_FILES.config] = patchConfig(p, sources[UPSTREAM_FILES.config] as string, lab, rs);
    const common = patchCommon(p, sources[UPSTREAM_FILES.common] as string, lab);
    out[UPSTREAM_FILES.common] = common.text;
    if (common.replicaMax !== undefined && common.replicaMax < lab.n) {
      p.lab('UPSTREAM_LAB_SIZE', `n=${lab.n}`, `FAST_REPLICA_MAX is ${common.replicaMax} (map_configure has that many entries)`, 'raise FAST_REPLICA_MAX in fast_common.h');
    }
    out[UPSTREAM_FILES.user] = patchUser(p, user, lab, rs, common.replicaMax, opts);
    port = rs[0]?.port ?? UPSTREAM_PORT;
  } else {
    out[UPSTREAM_FILES.user] = patchUserToolchain(p, user, opts);
    port = kernelPorts(sources[UPSTREAM_FILES.kern] as string)[0] ?? UPSTREAM_PORT;
  }
  out[UPSTREAM_FILES.kern] = patchKern(p, sources[UPSTREAM_FILES.kern] as string, opts.values ? port : undefined, loaderPrograms(user), opts);
  if (pinMoved) out[UPSTREAM_FILES.replica] = patchReplica(p, sources[UPSTREAM_FILES.replica] as string, (lab.pinDir as string).replace(/\/+$/, ''));
  if (opts.asserts) out[UPSTREAM_FILES.makefile] = patchMakefile(p, sources[UPSTREAM_FILES.makefile] as string);
  if (p.diagnostics.length) throw new UpstreamPatchError(p.diagnostics, p.missing);

  const order = Object.values(UPSTREAM_FILES) as UpstreamFile[];
  const changed = order.filter((f) => sources[f] !== undefined && out[f] !== sources[f]);
  const diff = changed.map((f) => unifiedDiff(f, sources[f] as string, out[f] as string)).join('');
  return { files: out, changed, diff, edits: p.edits, port };
}
