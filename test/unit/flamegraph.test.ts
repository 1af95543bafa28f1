/** flame.svg from folded stacks: geometry, order, escaping, colours, dropped frames, determinism, speed. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fitLabel, flameLayout, frameColor, frameKind, renderFlameGraph } from '../../src/bench/flamegraph.js';
import { Folded, FoldedStack, foldPerfScript, parseFolded } from '../../src/bench/profile.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');

interface DrawnFrame {
  title: string;
  x: number;
  y: number;
  width: number;
  fill: string;
  label: string | undefined;
}

const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');

/** The frames as drawn: one <g> per frame inside <g id="frames">. */
function drawn(svg: string): DrawnFrame[] {
  const body = svg.slice(svg.indexOf('<g id="frames">'));
  const re = /<g><title>([^<]*)<\/title><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="15" rx="2" fill="(#[0-9a-f]{6})"\/>(?:<text x="[\d.]+" y="[\d.]+">([^<]*)<\/text>)?<\/g>/g;
  return [...body.matchAll(re)].map((m) => ({ title: unescape(m[1]!), x: +m[2]!, y: +m[3]!, width: +m[4]!, fill: m[5]!, label: m[6] === undefined ? undefined : unescape(m[6]) }));
}

const frameNamed = (svg: string, name: string) => {
  const f = drawn(svg).filter((d) => d.title.startsWith(`${name} (`));
  expect(f).toHaveLength(1);
  return f[0]!;
};

/** Balanced tags, one root <svg>, no stray '<' or unescaped '&' in text. */
function checkWellFormed(svg: string): void {
  const stack: string[] = [];
  let roots = 0;
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (const m of svg.matchAll(tag)) {
    const between = svg.slice(last, m.index);
    expect(between).not.toMatch(/[<>]/);
    expect(between).not.toMatch(/&(?!(lt|gt|amp|quot|apos);)/);
    for (const attr of m[3]!.matchAll(/="([^"]*)"/g)) expect(attr[1]).not.toMatch(/&(?!(lt|gt|amp|quot|apos);)/);
    last = m.index + m[0].length;
    const [, close, name, , selfClose] = m;
    if (close) expect(stack.pop()).toBe(name);
    else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name!);
    }
  }
  expect(svg.slice(last).trim()).toBe('');
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
  expect(svg.startsWith('<svg ')).toBe(true);
}

// 100 samples: a;b 50, a;c 25, a alone 25
const HALVES: Folded = [
  { stack: ['a', 'c'], count: 25 },
  { stack: ['a', 'b'], count: 50 },
  { stack: ['a'], count: 25 },
];

describe('renderFlameGraph geometry', () => {
  const svg = renderFlameGraph(HALVES, { title: 'halves', width: 1200 });

  it('draws one rect per frame (all, a, b, c) and the SVG is well formed', () => {
    checkWellFormed(svg);
    expect(drawn(svg).map((d) => d.title)).toEqual(['all (100 samples, 100.00%)', 'a (100 samples, 100.00%)', 'b (50 samples, 50.00%)', 'c (25 samples, 25.00%)']);
    expect(svg.slice(svg.indexOf('<g id="frames">')).match(/<rect/g)).toHaveLength(4);
  });

  it('the root spans the plot; a child with half the samples is half as wide; siblings sit side by side in name order', () => {
    const all = frameNamed(svg, 'all');
    expect(all.x).toBe(10);
    expect(all.width).toBe(1180);
    const a = frameNamed(svg, 'a');
    const b = frameNamed(svg, 'b');
    const c = frameNamed(svg, 'c');
    expect(a.width).toBe(all.width);
    expect(Math.abs(b.width - a.width / 2)).toBeLessThanOrEqual(1);
    expect(Math.abs(c.width - a.width / 4)).toBeLessThanOrEqual(1);
    expect(b.x).toBe(a.x); // b < c: b first, though the input listed c first
    expect(Math.abs(c.x - (b.x + b.width))).toBeLessThanOrEqual(0.01);
  });

  it('the root is at the bottom, each level one row higher', () => {
    const [all, a, b, c] = ['all', 'a', 'b', 'c'].map((n) => frameNamed(svg, n));
    expect(a!.y).toBe(all!.y - 16);
    expect(b!.y).toBe(a!.y - 16);
    expect(c!.y).toBe(b!.y);
    const height = Number(/height="(\d+)"/.exec(svg)![1]);
    expect(all!.y + 15).toBeLessThanOrEqual(height);
  });

  it('widths add up on every row of a real profile: children never wider than their parent, rows never past the plot', () => {
    const folded = foldPerfScript(readFileSync(join(FIX, 'perf-script-sample.txt'), 'utf8'));
    const layout = flameLayout(folded, 1180, 0);
    expect(layout.droppedFrames).toBe(0);
    expect(layout.frames[0]).toMatchObject({ name: 'all', depth: 0, x: 0, width: 1180, count: 104 });
    for (let d = 1; d <= layout.maxDepth; d++) {
      const row = layout.frames.filter((f) => f.depth === d);
      const parents = layout.frames.filter((f) => f.depth === d - 1);
      for (const f of row) {
        const p = parents.find((q) => q.x <= f.x + 1e-9 && f.x + f.width <= q.x + q.width + 1e-9);
        expect(p, `${f.name} at depth ${d} sits on a parent`).toBeDefined();
      }
      for (let i = 1; i < row.length; i++) expect(row[i]!.x).toBeGreaterThanOrEqual(row[i - 1]!.x + row[i - 1]!.width - 1e-9);
      expect(row.reduce((a, f) => a + f.width, 0)).toBeLessThanOrEqual(1180 + 1e-6);
    }
    // the first level (one tower per process) covers the whole width
    expect(layout.frames.filter((f) => f.depth === 1).reduce((a, f) => a + f.count, 0)).toBe(104);
  });
});

describe('renderFlameGraph text', () => {
  const folded = parseFolded('app;operator<<;a&b 10\napp;"quoted" \'x\' 5\napp;bad\u0001char 1\n');
  const svg = renderFlameGraph(folded, { title: 'T <&> "q"', subtitle: 'arm <all> & more' });

  it('escapes names in tooltips and labels, and the title and subtitle', () => {
    checkWellFormed(svg);
    expect(svg).toContain('<title>operator&lt;&lt; (10 samples, 62.50%)</title>');
    expect(svg).toContain('<title>a&amp;b (10 samples, 62.50%)</title>');
    expect(svg).toContain('&quot;quoted&quot; &apos;x&apos;');
    expect(svg).toContain('T &lt;&amp;&gt; &quot;q&quot;');
    expect(svg).toContain('arm &lt;all&gt; &amp; more');
    expect(svg).not.toContain('operator<<');
    expect(svg).not.toContain('a&b');
    expect(svg).not.toContain('\u0001');
  });

  it('labels fit their frame: whole, cut with an ellipsis, or left out', () => {
    expect(fitLabel('abcdefghij', 6 + 6.6 * 10)).toBe('abcdefghij');
    expect(fitLabel('abcdefghij', 6 + 6.6 * 5)).toBe('abcd…');
    expect(fitLabel('abcdefghij', 6 + 6.6 * 3)).toBe('ab…');
    expect(fitLabel('abcdefghij', 6 + 6.6 * 2.9)).toBe('');
    // a frame of 5 samples out of 16 in 1180 px is 368.75 px: room for (368.75 - 6) / 6.6 = 54.96 characters
    const long = 'x'.repeat(60);
    const g = renderFlameGraph([{ stack: ['r', long], count: 5 }, { stack: ['r', 'y'], count: 11 }], { title: 't' });
    const f = frameNamed(g, long);
    expect(f.width).toBe(368.75);
    expect(f.label).toBe(`${'x'.repeat(53)}…`);
    expect(frameNamed(g, 'y').label).toBe('y');
  });

  it('the info line gives the total with thousands separators', () => {
    const g = renderFlameGraph([{ stack: ['a'], count: 1234567 }], { title: 't' });
    expect(g).toContain('>1,234,567 samples<');
    expect(renderFlameGraph([{ stack: ['a'], count: 3 }], { title: 't', unit: 'ns' })).toContain('a (3 ns, 100.00%)');
  });
});

describe('renderFlameGraph colours', () => {
  it('kernel frames are blue, user frames warm, eBPF programs green, unresolved ones grey; the same name always gets the same fill', () => {
    const rgb = (c: string) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)) as [number, number, number];
    for (const name of ['schedule_[k]', 'native_write_msr_[k]', 'veth_xdp_rcv_skb_[k]']) {
      expect(frameKind(name)).toBe('kernel');
      const [r, , b] = rgb(frameColor(name));
      expect(b).toBeGreaterThan(r);
    }
    for (const name of ['main', 'vr_step', 'std::vector<int>::push_back']) {
      expect(frameKind(name)).toBe('user');
      const [r, , b] = rgb(frameColor(name));
      expect(r).toBeGreaterThan(b + 100);
    }
    const [r, g, b] = rgb(frameColor('bpf_prog_7ceffd686f5c170a_el_xdp_reply_[k]'));
    expect(g).toBeGreaterThan(Math.max(r, b));
    const grey = rgb(frameColor('[libc.so.6]'));
    expect(new Set(grey).size).toBe(1);
    expect(frameColor('vr_step')).toBe(frameColor('vr_step'));
    expect(frameColor('vr_step')).not.toBe(frameColor('vr_stop'));
    const svg = renderFlameGraph([{ stack: ['replica', 'vr_step', 'sendmsg_[k]'], count: 1 }], { title: 't' });
    expect(frameNamed(svg, 'sendmsg_[k]').fill).toBe(frameColor('sendmsg_[k]'));
  });
});

describe('renderFlameGraph determinism and dropped frames', () => {
  it('the same stacks in any order give the same bytes', () => {
    const folded = foldPerfScript(readFileSync(join(FIX, 'perf-script-sample.txt'), 'utf8'));
    const a = renderFlameGraph(folded, { title: 'fixture', subtitle: 's' });
    const shuffled = [...folded].reverse();
    shuffled.push(shuffled.shift()!);
    expect(renderFlameGraph(shuffled, { title: 'fixture', subtitle: 's' })).toBe(a);
    checkWellFormed(a);
    expect(drawn(a).length).toBe(flameLayout(folded, 1180).frames.length);
  });

  it('frames narrower than minWidthPx are not drawn, and are counted in the info line', () => {
    // 50 towers of 2 frames, 1 sample each, beside one of 10,000 samples: 1180/10050 px each
    const folded: Folded = [{ stack: ['big', 'work'], count: 10000 }];
    for (let i = 0; i < 50; i++) folded.push({ stack: [`tiny${i}`, 'leaf'], count: 1 });
    const svg = renderFlameGraph(folded, { title: 't' });
    expect(drawn(svg).map((d) => d.title.split(' ')[0])).toEqual(['all', 'big', 'work']);
    expect(svg).toContain('10,050 samples · 100 frames narrower than 0.3 px not drawn (they hold 0.50% of samples)');
    const layout = flameLayout(folded, 1180, 0.3);
    expect(layout).toMatchObject({ droppedFrames: 100, droppedCount: 50, maxDepth: 2 });
    // with no threshold every frame is drawn and nothing is said about dropping
    const all = renderFlameGraph(folded, { title: 't', minWidthPx: 0 });
    expect(drawn(all)).toHaveLength(3 + 100);
    expect(all).not.toContain('not drawn');
  });

  it('a dropped subtree counts its samples once, at its lowest frame', () => {
    const layout = flameLayout(parseFolded('a;b 1000\na;n;m;l 1\na;n;k 1\n'), 100, 0.3);
    expect(layout.frames.map((f) => f.name)).toEqual(['all', 'a', 'b']);
    expect(layout).toMatchObject({ droppedFrames: 4, droppedCount: 2 });
  });

  it('no samples: a valid SVG that says so', () => {
    for (const folded of [[], [{ stack: ['a'], count: 0 }]] as Folded[]) {
      const svg = renderFlameGraph(folded, { title: 'empty' });
      checkWellFormed(svg);
      expect(drawn(svg)).toHaveLength(0);
      expect(svg).toContain('>no samples<');
    }
  });
});

describe('renderFlameGraph speed', () => {
  it('renders 50,000 distinct stacks well under a second', () => {
    let seed = 42;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const names = Array.from({ length: 3000 }, (_, i) => `sym_${i}${i % 3 ? '_[k]' : ''}`);
    const m = new Map<string, FoldedStack>();
    while (m.size < 50_000) {
      const stack = [`comm${Math.floor(rnd() * 8)}`];
      for (let d = 5 + Math.floor(rnd() * 30); d > 0; d--) stack.push(names[Math.floor(rnd() ** 3 * names.length)]!);
      m.set(stack.join(';'), { stack, count: 1 + Math.floor(rnd() * 100) });
    }
    const folded = [...m.values()];
    const t0 = performance.now();
    const svg = renderFlameGraph(folded, { title: 'big' });
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(1000); // about 60 ms here; a tree-per-frame version took 400-650 ms
    expect(drawn(svg).length).toBeGreaterThan(100);
    expect(svg).toMatch(/ frames narrower than 0\.3 px not drawn/);
  });
});
