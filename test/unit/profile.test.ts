/** perf script text -> folded stacks, folded text both ways, and the shares the bench prints. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Folded, foldPerfScript, foldedText, parseFolded, stackShare, symbolShare, topSymbols, totalCount } from '../../src/bench/profile.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');

// perf 6.1's default `perf script` layout for `perf record -a -g` (cpu-clock, as in our VMs)
const SNIPPET = [
  '# a header comment, as `perf script --header` prints',
  'replica 1234 [000]   100.000001:     250000 cpu-clock:ppp: ',
  '\tffffffff81000010 native_write_msr+0x10 ([kernel.kallsyms])',
  '\tffffffff81000020 arch_irq_work_raise+0x20 ([kernel.kallsyms])',
  '\tffffffffc0026b72 bpf_prog_7ceffd686f5c170a_el_xdp_reply+0x26 (bpf_prog_7ceffd686f5c170a_el_xdp_reply)',
  '\t            1237 vr_step+0x1e (/opt/lab/bin/replica)',
  '\t          149ce3 [unknown] (/opt/lab/bin/replica)',
  '\t           2724a __libc_start_call_main+0x7a (/usr/lib/x86_64-linux-gnu/libc.so.6)',
  '',
  'replica 1234 [001]   100.000251:     250000 cpu-clock:ppp: ',
  '\tffffffff81000010 native_write_msr+0x1c ([kernel.kallsyms])',
  '\tffffffff81000020 arch_irq_work_raise+0x20 ([kernel.kallsyms])',
  '\tffffffffc0026b72 bpf_prog_7ceffd686f5c170a_el_xdp_reply+0x30 (bpf_prog_7ceffd686f5c170a_el_xdp_reply)',
  '\t            1240 vr_step+0x21 (/opt/lab/bin/replica)',
  '\t          149ce3 [unknown] (/opt/lab/bin/replica)',
  '\t           2724a __libc_start_call_main+0x7a (/usr/lib/x86_64-linux-gnu/libc.so.6)',
  '',
  'Web Content 77/78 [001]   100.000300:     500000 cpu-clock:ppp: ',
  '\t            55d0 std::vector<int, std::allocator<int> >::push_back(int const&)+0x12 (/usr/bin/app (deleted))',
  '\t             b66 [unknown] ([vdso])',
  '\t               0 [unknown] ([unknown])',
  '',
  'perf 99 [000]   100.000350: PERF_RECORD_COMM: perf:99/99',
  '',
  'swapper     0 [000]   100.000400:     250000 cpu-clock:ppp: ',
  '\tffffffff81000030 default_idle+0x5 ([kernel.kallsyms])',
  '\tffffffff81000040 do_idle+0x1e ([kernel.kallsyms])',
  '',
  'kworker/1:4-eve 999 [001]   100.000500:     250000 cpu-clock:ppp: ',
  '',
].join('\n');

describe('foldPerfScript on a hand-written snippet', () => {
  it('folds to root-first stacks: comm prefix, offsets stripped, [unknown] -> [dso], kernel and eBPF frames suffixed, equal stacks merged', () => {
    expect(foldedText(foldPerfScript(SNIPPET))).toBe(
      [
        'Web Content;[unknown];[vdso];std::vector<int, std::allocator<int> >::push_back(int const&) 1',
        'kworker/1:4-eve 1',
        'replica;__libc_start_call_main;[replica];vr_step;bpf_prog_7ceffd686f5c170a_el_xdp_reply_[k];arch_irq_work_raise_[k];native_write_msr_[k] 2',
        'swapper;do_idle_[k];default_idle_[k] 1',
        '',
      ].join('\n'),
    );
  });

  it('returns each stack once, sorted, with the frames as an array', () => {
    const f = foldPerfScript(SNIPPET);
    expect(f.map((x) => x.count)).toEqual([1, 1, 2, 1]);
    expect(f[2]!.stack).toEqual(['replica', '__libc_start_call_main', '[replica]', 'vr_step', 'bpf_prog_7ceffd686f5c170a_el_xdp_reply_[k]', 'arch_irq_work_raise_[k]', 'native_write_msr_[k]']);
    expect(totalCount(f)).toBe(5); // 5 sample headers; the PERF_RECORD_COMM line is not a sample
  });

  it('options: no comm, no kernel suffix, period weights, idle dropped', () => {
    const noComm = foldedText(foldPerfScript(SNIPPET, { comm: false, kernelSuffix: false }));
    expect(noComm.split('\n')).toEqual([
      '[unknown] 1', // the kworker sample had no frames
      '[unknown];[vdso];std::vector<int, std::allocator<int> >::push_back(int const&) 1',
      '__libc_start_call_main;[replica];vr_step;bpf_prog_7ceffd686f5c170a_el_xdp_reply;arch_irq_work_raise;native_write_msr 2',
      'do_idle;default_idle 1',
      '',
    ]);
    const byPeriod = foldPerfScript(SNIPPET, { weight: 'period' });
    expect(byPeriod.map((x) => [x.stack[0], x.count])).toEqual([
      ['Web Content', 500000],
      ['kworker/1:4-eve', 250000],
      ['replica', 500000],
      ['swapper', 250000],
    ]);
    expect(foldPerfScript(SNIPPET, { idle: false }).map((x) => x.stack[0])).toEqual(['Web Content', 'kworker/1:4-eve', 'replica']);
  });

  it('takes the last parenthesised group as the dso, so symbols with parentheses and "(deleted)" dsos survive', () => {
    const lines = ['x 1 [000] 1.0: 1 cpu-clock:', '\t10 [unknown] (/usr/bin/app (deleted))', '\t20 f(int) (/usr/bin/app)', '\t30 g(char)', '\tb66 __vdso_clock_gettime+0x56 ([vdso])'];
    const f = foldPerfScript(lines.join('\n'), { comm: false });
    expect(f[0]!.stack).toEqual(['__vdso_clock_gettime', 'g(char)', 'f(int)', '[app (deleted)]']);
  });

  it('tells kernel frames by dso (kallsyms, a module, a JIT-ed program) or, unresolved, by a kernel-half address', () => {
    const lines = [
      'x 1 [000] 1.0: 1 cpu-clock:',
      '\tffffffffc0001000 nft_do_chain+0x1 ([nf_tables])',
      '\tffffffffc0002000 ext4_foo+0x1 (/lib/modules/6.1.0/kernel/fs/ext4/ext4.ko)',
      '\tffffffff81001234 [unknown] ([unknown])',
      '\tffffffffff600000 [unknown] ([unknown])',
      '\t7f0000001000 [unknown] ([unknown])',
      '\t7f0000002000 start+0x1 ([heap])',
    ];
    expect(foldPerfScript(lines.join('\n'), { comm: false })[0]!.stack).toEqual(['start', '[unknown]', '[unknown]', '[unknown]_[k]', 'ext4_foo_[k]', 'nft_do_chain_[k]']);
  });

  it('keeps ";" out of frame names (it separates frames in folded text)', () => {
    const f = foldPerfScript('a;b 1 [000] 1.0: 1 cpu-clock:\n\t10 x;y+0x1 (/bin/z)\n');
    expect(f[0]!.stack).toEqual(['a:b', 'x:y']);
  });

  it('reads headers without a cpu field, with pid/tid, and CRLF line ends', () => {
    const f = foldPerfScript('app 10/11 5.5: 250000 cpu-clock:ppp:\r\n\t10 main+0x1 (/bin/app)\r\n\r\n', { weight: 'period' });
    expect(f).toEqual([{ stack: ['app', 'main'], count: 250000 }]);
  });
});

describe('foldPerfScript on a real capture (test/fixtures/perf-script-sample.txt)', () => {
  const text = readFileSync(join(FIX, 'perf-script-sample.txt'), 'utf8');
  const folded = foldPerfScript(text);
  const blocks = text.split('\n\n').filter((b) => /^[^#\s]/m.test(b));

  it('counts every sample header once', () => {
    const headers = text.split('\n').filter((l) => /^[^#\s].*\s\[\d{3}\]\s+\d+\.\d+:\s+\d+ cpu-clock/.test(l)).length;
    expect(headers).toBe(104);
    expect(totalCount(folded)).toBe(headers);
  });

  it('every stack starts with its process and no frame keeps an offset', () => {
    expect(new Set(folded.map((f) => f.stack[0]))).toEqual(new Set(['busy', 'python3']));
    for (const f of folded) for (const name of f.stack) expect(name).not.toMatch(/\+0x[0-9a-f]+$/);
  });

  it('resolves user, C++, kernel and eBPF frames by name', () => {
    const names = new Set(folded.flatMap((f) => f.stack));
    expect(names).toContain('churn_map');
    expect(names).toContain('veth_xdp_rcv_skb_[k]');
    expect(names).toContain('bpf_prog_7ceffd686f5c170a_flame_fixture_pass_[k]');
    expect([...names].some((n) => n.startsWith('std::_Rb_tree<std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >'))).toBe(true);
  });

  it('stackShare agrees with a count over the raw samples (the eBPF program under veth_xdp_rcv_skb)', () => {
    // leaf first in the raw text: the program's line comes before veth_xdp_rcv_skb's
    const raw = blocks.filter((b) => {
      const i = b.indexOf('flame_fixture_pass+');
      return i >= 0 && b.indexOf(' veth_xdp_rcv_skb+', i) > i;
    }).length;
    expect(raw).toBe(6);
    const share = stackShare(folded, [/^veth_xdp_rcv_skb_\[k\]$/, /^bpf_prog_.*_flame_fixture_pass_\[k\]$/]);
    expect(share).toEqual({ count: raw, total: 104, percent: (raw / 104) * 100 });
    // the other order (the program below the veth code) never happens
    expect(stackShare(folded, [/flame_fixture_pass/, /veth_xdp_rcv_skb/]).count).toBe(0);
  });

  it('folded text round-trips', () => {
    const t = foldedText(folded);
    expect(parseFolded(t)).toEqual(folded);
    expect(foldedText(parseFolded(t))).toBe(t);
  });

  it('a truncated capture (cut anywhere, even mid-line) folds without throwing and loses at most the cut sample', () => {
    for (let cut = 0; cut <= text.length; cut += 997) {
      const part = text.slice(0, cut);
      const whole = part.split('\n').filter((l, i, a) => i < a.length - 1 && /^[^#\s].*\[\d{3}\]\s+\d+\.\d+:/.test(l)).length;
      const n = totalCount(foldPerfScript(part));
      expect(n).toBeGreaterThanOrEqual(whole);
      expect(n).toBeLessThanOrEqual(whole + 1);
    }
  });
});

describe('foldPerfScript on odd input', () => {
  it('never throws and ignores what is not a sample', () => {
    expect(foldPerfScript('')).toEqual([]);
    expect(foldPerfScript('\tffff frame before any header (x)\n')).toEqual([]);
    expect(foldPerfScript('Warning:\nsomething odd\n\u0000\u0001\n\t\t\n')).toEqual([]);
    expect(() => foldPerfScript('x 1 [000] 1.0: 1 e:\n\t'.repeat(1000) + '(((')).not.toThrow();
    expect(totalCount(foldPerfScript('x 1 [000] 1.0: 1 e:\n\tzz not a frame\n\t10 ok+0x1 (/bin/x)\n'))).toBe(1);
  });
});

describe('parseFolded', () => {
  it('splits the count at the last space, merges duplicates, skips bad lines', () => {
    expect(parseFolded('a;b c 3\nbad\na;b c 2\n;x -1\nz NaN\nq 1\n')).toEqual([
      { stack: ['a', 'b c'], count: 5 },
      { stack: ['q'], count: 1 },
    ]);
  });
});

// 20 samples: 5 a;b;c, 3 a;b, 2 a;d;c, 10 x
const CRAFTED: Folded = [
  { stack: ['a', 'b', 'c'], count: 5 },
  { stack: ['a', 'b'], count: 3 },
  { stack: ['a', 'd', 'c'], count: 2 },
  { stack: ['x'], count: 10 },
];

describe('topSymbols', () => {
  it('self time: leaves only, heaviest first, percent of all samples', () => {
    expect(topSymbols(CRAFTED, 2)).toEqual([
      { symbol: 'x', count: 10, percent: 50 },
      { symbol: 'c', count: 7, percent: 35 },
    ]);
    expect(topSymbols(CRAFTED, 10, { self: true }).map((s) => s.symbol)).toEqual(['x', 'c', 'b']);
  });

  it('inclusive: each stack counted once per symbol, ties by name', () => {
    expect(topSymbols(CRAFTED, 10, { self: false })).toEqual([
      { symbol: 'a', count: 10, percent: 50 },
      { symbol: 'x', count: 10, percent: 50 },
      { symbol: 'b', count: 8, percent: 40 },
      { symbol: 'c', count: 7, percent: 35 },
      { symbol: 'd', count: 2, percent: 10 },
    ]);
    expect(topSymbols([{ stack: ['r', 'r', 'r'], count: 4 }], 1, { self: false })).toEqual([{ symbol: 'r', count: 4, percent: 100 }]);
  });

  it('no samples: nothing, and no NaN', () => {
    expect(topSymbols([], 5)).toEqual([]);
    expect(topSymbols(CRAFTED, 0)).toEqual([]);
  });
});

describe('stackShare and symbolShare', () => {
  it('matches in order from root to leaf, frames in between allowed, one frame per pattern', () => {
    expect(stackShare(CRAFTED, [/^b$/, /^c$/])).toEqual({ count: 5, total: 20, percent: 25 });
    expect(stackShare(CRAFTED, [/^a$/, /^c$/])).toEqual({ count: 7, total: 20, percent: 35 });
    expect(stackShare(CRAFTED, [/^c$/, /^b$/]).count).toBe(0);
    expect(stackShare(CRAFTED, [/^c$/, /^c$/]).count).toBe(0);
    expect(stackShare(CRAFTED, []).percent).toBe(100);
    expect(stackShare([], [/a/])).toEqual({ count: 0, total: 0, percent: 0 });
  });

  it('the reference case: native_write_msr under bpf_ringbuf_submit, not the one under a context switch', () => {
    const folded = parseFolded(
      [
        'replica;el_xdp_reply_[k];bpf_ringbuf_submit_[k];irq_work_queue_[k];arch_irq_work_raise_[k];native_write_msr_[k] 30',
        'replica;schedule_[k];finish_task_switch_[k];native_write_msr_[k] 12',
        'replica;bpf_ringbuf_submit_[k] 8',
        'swapper;default_idle_[k] 50',
      ].join('\n'),
    );
    expect(stackShare(folded, [/bpf_ringbuf_submit/, /native_write_msr/]).percent).toBe(30);
    expect(symbolShare(folded, /native_write_msr/).percent).toBe(42);
    expect(symbolShare(folded, /bpf_ringbuf_submit/).count).toBe(38);
  });

  it('a /g regexp gives the same answer every time (no lastIndex carried between stacks)', () => {
    const g = /c/g;
    expect(symbolShare(CRAFTED, g).count).toBe(7);
    expect(symbolShare(CRAFTED, g).count).toBe(7);
  });
});
