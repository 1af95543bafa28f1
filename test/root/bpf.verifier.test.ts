/**
 * Every eBPF object loads and passes THIS kernel's verifier, and references
 * no helper newer than Linux 5.8 (so the same objects load in the 5.8 VMs).
 *
 * The 5.8 limit: in v5.8's include/uapi/linux/bpf.h, __BPF_FUNC_MAPPER ends
 * with FN(ringbuf_query), FN(csum_level): csum_level = 135 is the last
 * helper id (v5.9 appended skc_to_tcp6_sock = 136 and on). Read via the
 * public kernel sources; the ids only ever grow by appending.
 */
import { execa } from 'execa';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isRoot, ROOT } from '../helpers/bpf.helpers.js';

const MAX_HELPER_ID_LINUX_5_8 = 135;
const BUILD = join(ROOT, 'bpf', 'build');
const objects = () => readdirSync(BUILD).filter((f) => f.endsWith('.bpf.o'));

/** Each object, its programs, and helpers it must call (ids from v5.8's uapi bpf.h). */
const OBJECTS = [
  // tail_call 12
  { file: 'el_xdp.bpf.o', progs: ['el_xdp_dispatch'], helpers: [12] },
  // spin_lock 93, tail_call 12, skb_pull_data 39 (egress, and the TC ingress dispatcher for veth)
  { file: 'el_tc.bpf.o', progs: ['el_tc_egress', 'el_tc_ingress'], helpers: [12, 39, 93] },
  { file: 'el_quorum.bpf.o', progs: ['el_tci_quorum', 'el_xdp_quorum'], helpers: [93] },
  // ringbuf_output 130 (not ringbuf_reserve 131: see el_common.h), ktime_get_ns 5, xdp_adjust_tail 65;
  // the TC flavour: skb_change_tail 38, redirect 23
  { file: 'el_reply.bpf.o', progs: ['el_tci_reply', 'el_xdp_reply'], helpers: [5, 23, 38, 65, 130] },
  // clone_redirect 13
  { file: 'el_broadcast.bpf.o', progs: ['el_tc_broadcast'], helpers: [13] },
  { file: 'el_pass.bpf.o', progs: ['el_xdp_pass'], helpers: [] },
  // the nemesis' link impairment (not a fast path): get_prandom_u32 7, clone_redirect 13
  { file: 'el_impair.bpf.o', progs: ['el_tc_impair'], helpers: [7, 13] },
];

/** Helper ids from `call N` instructions (BPF-to-BPF calls would be `call -N`/pc-relative; we inline all). */
export function helperIds(disasm: string): number[] {
  const ids = new Set<number>();
  for (const m of disasm.matchAll(/\bcall (0x[0-9a-f]+|\d+)\s*$/gm)) ids.add(Number(m[1]));
  return [...ids].sort((a, b) => a - b);
}

describe('bpf objects vs Linux 5.8', () => {
  it('helper-id extraction reads llvm-objdump call lines', () => {
    expect(helperIds('  12:\t85 00 00 00 83 00 00 00\tcall 131\n  13:\t85 00 00 00 0c 00 00 00\tcall 0xc\n')).toEqual([12, 131]);
  });

  it('builds the objects this suite checks: one per fast path, so a kernel that rejects one keeps the others', () => {
    expect(objects().sort()).toEqual(OBJECTS.map((o) => o.file).sort());
  });

  for (const { file: obj, helpers } of OBJECTS) {
    it(`${obj}: no helper newer than 5.8, no atomic fetch instructions (5.12)`, async () => {
      const r = await execa('llvm-objdump', ['-d', '--no-show-raw-insn', join(BUILD, obj)]);
      const ids = helperIds(r.stdout);
      // the parser must actually see the calls the object makes
      expect(ids).toEqual(expect.arrayContaining(helpers));
      const tooNew = ids.filter((id) => id > MAX_HELPER_ID_LINUX_5_8);
      expect(tooNew, `helpers newer than 5.8: ${tooNew.join(',')}`).toEqual([]);
      expect(r.stdout).not.toMatch(/atomic_fetch|cmpxchg|xchg/);
    });
  }

  describe.skipIf(!isRoot)('real verifier', () => {
    const pinRoot = `/sys/fs/bpf/electrode-lab-verifier-${process.pid}`;
    afterAll(async () => {
      await execa('rm', ['-rf', '--one-file-system', pinRoot], { reject: false });
    });
    for (const { file: obj, progs: expected } of OBJECTS) {
      it(`${obj}: every program passes the kernel verifier`, async () => {
        const dir = join(pinRoot, obj.replace(/\W/g, '_'));
        mkdirSync(pinRoot, { recursive: true }); // bpftool creates only the last level
        const r = await execa('bpftool', ['prog', 'loadall', join(BUILD, obj), dir], { reject: false });
        expect(r.exitCode, r.stderr.split('\n').slice(-15).join('\n')).toBe(0);
        const progs = readdirSync(dir).sort();
        expect(progs).toEqual(expected);
        // the kernel's own view of what each loaded program calls
        for (const p of progs) {
          const x = await execa('bpftool', ['prog', 'dump', 'xlated', 'pinned', join(dir, p)]);
          expect(x.stdout.length).toBeGreaterThan(0);
        }
      });
    }
  });
});
