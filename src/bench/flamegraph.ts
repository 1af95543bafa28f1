/**
 * flame.svg, drawn by our own code: folded stacks -> one rectangle per frame,
 * the root at the bottom, widths proportional to samples, stacks merged by
 * equal prefix and children ordered by name (as Brendan Gregg's flamegraph.pl
 * does), so the x axis is not time and equal inputs give equal pictures. No
 * script: every frame has a <title> tooltip, labels are cut to fit.
 */
import { escapeXml } from './xml.js';
import { FoldedStack, KERNEL_SUFFIX } from './profile.js';

export interface FlameGraphOptions {
  title: string;
  subtitle?: string;
  /** Width of the whole picture in px. Default 1200. */
  width?: number;
  /** Frames narrower than this (and everything above them) are not drawn, only counted. Default 0.3. */
  minWidthPx?: number;
  /** What a count is, for the tooltips and the info line. Default "samples". */
  unit?: string;
}

/** One drawn frame: x and width in px; depth 0 is the synthetic root "all". */
export interface FlameFrame {
  name: string;
  depth: number;
  x: number;
  width: number;
  count: number;
}

export interface FlameLayout {
  frames: FlameFrame[];
  total: number;
  /** Frames not drawn because they (or a frame below them) were narrower than minWidthPx. */
  droppedFrames: number;
  /** Samples in the dropped subtrees' lowest frames (not counting a sample twice). */
  droppedCount: number;
  maxDepth: number;
}

export const ROOT_NAME = 'all';
const PAD = 10;
const FRAME_H = 16;
const FONT_SIZE = 11;
/** Advance of one character of the monospace label font at FONT_SIZE (0.6 em for DejaVu Sans Mono, Menlo, Consolas). */
const CHAR_W = 0.6 * FONT_SIZE;

/**
 * Frame by frame, in code-unit order: siblings end up sorted by name and equal
 * prefixes adjacent. A stack sorts after the longer ones it is a prefix of, so a
 * frame's children start at its left edge and its self time is the gap on the right.
 */
function byFrames(a: FoldedStack, b: FoldedStack): number {
  const x = a.stack;
  const y = b.stack;
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return y.length - x.length;
}

/**
 * Where every frame goes, for a plot plotWidth px wide starting at x0. Like
 * flamegraph.pl it walks the stacks in sorted order with one open frame per depth,
 * so no tree is built: a frame closes when the next stack leaves its prefix, and
 * its count is how far the sample offset moved meanwhile.
 */
export function flameLayout(folded: readonly FoldedStack[], plotWidth: number, minWidthPx = 0.3, x0 = 0): FlameLayout {
  const stacks = folded.filter((f) => f.count > 0).sort(byFrames);
  let total = 0;
  for (const f of stacks) total += f.count;
  const frames: FlameFrame[] = [];
  let droppedFrames = 0;
  let droppedCount = 0;
  let maxDepth = 0;
  if (total <= 0) return { frames, total: 0, droppedFrames, droppedCount, maxDepth };
  const scale = plotWidth / total;
  // per depth: the open frame's name, its start (in samples, so rounding never adds up
  // along a row) and the samples of its children that were too narrow to draw
  const names: string[] = [ROOT_NAME];
  const starts: number[] = [0];
  const droppedBelow: number[] = [0];
  let offset = 0;
  const close = (depth: number) => {
    const count = offset - starts[depth]!;
    const width = count * scale;
    if (width < minWidthPx) {
      droppedFrames++;
      if (depth > 0) droppedBelow[depth - 1]! += count;
      return;
    }
    droppedCount += droppedBelow[depth]!;
    frames.push({ name: names[depth]!, depth, x: x0 + starts[depth]! * scale, width, count });
    if (depth > maxDepth) maxDepth = depth;
  };
  let prev: readonly string[] = [];
  for (const f of stacks) {
    const s = f.stack;
    let common = 0;
    const n = Math.min(prev.length, s.length);
    while (common < n && prev[common] === s[common]) common++;
    for (let d = prev.length; d > common; d--) close(d);
    for (let d = common + 1; d <= s.length; d++) {
      names[d] = s[d - 1]!;
      starts[d] = offset;
      droppedBelow[d] = 0;
    }
    offset += f.count;
    prev = s;
  }
  for (let d = prev.length; d >= 0; d--) close(d);
  frames.sort((a, b) => a.depth - b.depth || a.x - b.x);
  return { frames, total, droppedFrames, droppedCount, maxDepth };
}

/** FNV-1a: a stable small hash so a frame keeps its colour across graphs. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export type FrameKind = 'user' | 'kernel' | 'bpf' | 'unknown' | 'root';

export function frameKind(name: string): FrameKind {
  if (name === ROOT_NAME) return 'root';
  const base = name.endsWith(KERNEL_SUFFIX) ? name.slice(0, -KERNEL_SUFFIX.length) : name;
  if (base.startsWith('bpf_prog_')) return 'bpf';
  if (base.startsWith('[') && base.endsWith(']')) return 'unknown';
  return name.endsWith(KERNEL_SUFFIX) ? 'kernel' : 'user';
}

/** Base colour and per-channel spread of each kind: warm for user space, blues for the kernel, greens for eBPF, greys for unresolved frames. */
const PALETTE: Record<FrameKind, { base: [number, number, number]; spread: [number, number, number] }> = {
  user: { base: [205, 60, 0], spread: [50, 170, 55] },
  kernel: { base: [70, 140, 200], spread: [50, 60, 55] },
  bpf: { base: [50, 165, 60], spread: [50, 60, 50] },
  unknown: { base: [175, 175, 175], spread: [30, 30, 30] },
  root: { base: [200, 200, 200], spread: [0, 0, 0] },
};

const hex2 = (v: number) => Math.round(v).toString(16).padStart(2, '0');

/** The fill of a frame: its kind's hue family, the shade from its name. */
export function frameColor(name: string): string {
  const { base, spread } = PALETTE[frameKind(name)];
  const h = hash(name);
  const v = [(h & 0xff) / 255, ((h >>> 8) & 0xff) / 255, ((h >>> 16) & 0xff) / 255];
  // one shade for the greys (v[0] on every channel), three for the colours
  const grey = spread[0] === spread[1] && spread[1] === spread[2];
  return `#${base.map((b, i) => hex2(b + spread[i]! * v[grey ? 0 : i]!)).join('')}`;
}

/** The middle shade of a kind, for the legend. */
export function kindColor(kind: FrameKind): string {
  const { base, spread } = PALETTE[kind];
  return `#${base.map((b, i) => hex2(b + spread[i]! / 2)).join('')}`;
}

/** XML 1.0 allows neither most control characters nor lone surrogates, whatever the escaping. */
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
export const xmlText = (s: string) => escapeXml(s.replace(INVALID_XML, '\uFFFD'));

/** The label that fits a frame widthPx wide: the name, or its start and an ellipsis, or nothing. */
export function fitLabel(name: string, widthPx: number): string {
  const chars = Math.floor((widthPx - 6) / CHAR_W + 1e-9); // 1e-9: 19.8 / 6.6 is 2.9999999999999996
  if (chars < 3) return '';
  if (name.length <= chars) return name;
  let cut = name.slice(0, chars - 1);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** Short decimal px values; the same number always prints the same. */
const px = (v: number) => String(Math.round(v * 100) / 100);

/** 1234567 -> "1,234,567" without the host's locale. */
export const groupDigits = (n: number) => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

const pctText = (n: number, total: number) => `${((n / total) * 100).toFixed(2)}%`;

export function renderFlameGraph(folded: readonly FoldedStack[], opts: FlameGraphOptions): string {
  const width = opts.width ?? 1200;
  const minWidthPx = opts.minWidthPx ?? 0.3;
  const unit = opts.unit ?? 'samples';
  const plotW = width - 2 * PAD;
  const layout = flameLayout(folded, plotW, minWidthPx, PAD);
  const infoY = opts.subtitle ? 62 : 44;
  const top = infoY + 16;
  const height = top + (layout.maxDepth + 1) * FRAME_H + PAD;
  const yOf = (depth: number) => top + (layout.maxDepth - depth) * FRAME_H;

  const s: string[] = [];
  s.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`);
  s.push('<style>#frames text{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:11px;fill:#000;pointer-events:none}#frames g:hover rect{stroke:#000;stroke-width:0.6}</style>');
  s.push(`<rect width="${width}" height="${height}" fill="#f8f8f8"/>`);
  s.push(`<text x="${PAD}" y="24" font-size="17" font-weight="bold" fill="#222">${xmlText(opts.title)}</text>`);
  if (opts.subtitle) s.push(`<text x="${PAD}" y="43" font-size="12" fill="#555">${xmlText(opts.subtitle)}</text>`);
  const total = layout.total;
  let info = `${groupDigits(total)} ${unit}`;
  if (layout.droppedFrames > 0) {
    info += ` · ${groupDigits(layout.droppedFrames)} frame${layout.droppedFrames === 1 ? '' : 's'} narrower than ${minWidthPx} px not drawn (they hold ${pctText(layout.droppedCount, total)} of ${unit})`;
  }
  s.push(`<text x="${PAD}" y="${infoY}" font-size="11" fill="#555">${xmlText(info)}</text>`);
  // legend, right-aligned on the info line
  const legend: [string, string][] = [
    ['user space', kindColor('user')],
    ['kernel _[k]', kindColor('kernel')],
    ['eBPF program', kindColor('bpf')],
    ['unresolved [dso]', kindColor('unknown')],
  ];
  let lx = width - PAD - legend.reduce((a, [label]) => a + 22 + label.length * 6.2, 0);
  for (const [label, fill] of legend) {
    s.push(`<rect x="${px(lx)}" y="${infoY - 9}" width="11" height="11" rx="2" fill="${fill}"/>`);
    s.push(`<text x="${px(lx + 15)}" y="${infoY}" font-size="11" fill="#333">${xmlText(label)}</text>`);
    lx += 22 + label.length * 6.2;
  }
  if (layout.total === 0) {
    s.push(`<text x="${width / 2}" y="${top + FRAME_H}" font-size="13" fill="#777" text-anchor="middle">no samples</text>`);
  }
  s.push('<g id="frames">');
  for (const f of layout.frames) {
    const name = f.name;
    const tip = `${name} (${groupDigits(f.count)} ${unit}, ${pctText(f.count, layout.total)})`;
    const y = yOf(f.depth);
    const label = fitLabel(name, f.width);
    s.push(
      `<g><title>${xmlText(tip)}</title><rect x="${px(f.x)}" y="${y}" width="${px(f.width)}" height="${FRAME_H - 1}" rx="2" fill="${frameColor(name)}"/>` +
        (label ? `<text x="${px(f.x + 3)}" y="${y + 11.5}">${xmlText(label)}</text>` : '') +
        '</g>',
    );
  }
  s.push('</g>');
  s.push('</svg>');
  return s.join('\n') + '\n';
}
