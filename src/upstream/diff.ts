/**
 * A small unified-diff writer (pure): the patch electrode-lab applies to a
 * copy of the user's Electrode tree is stored in the lab and run folders and
 * must apply with `patch -p1`, so it is written here rather than by shelling
 * out to `diff -u`.
 *
 * Lines are compared with their terminator, so a file whose last line has no
 * newline (upstream's config.txt and fast_user.c) gets GNU diff's
 * "\ No newline at end of file" marker and round-trips exactly.
 */

interface Line {
  text: string;
  eol: boolean;
}

type Op = { t: '=' | '-' | '+'; a: number; b: number };

export function splitLines(text: string): Line[] {
  if (text === '') return [];
  const parts = text.split('\n');
  const last = parts.pop() as string;
  const lines: Line[] = parts.map((p) => ({ text: p, eol: true }));
  if (last !== '') lines.push({ text: last, eol: false });
  return lines;
}

const same = (x: Line, y: Line) => x.text === y.text && x.eol === y.eol;

/** Myers' O(ND) shortest edit script; keeps only the live diagonals of each step. */
function editScript(a: Line[], b: Line[]): Op[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const trace: Int32Array[] = [];
  // v[k + d] for step d holds the furthest x on diagonal k
  let v = new Int32Array(3);
  let found = -1;
  for (let d = 0; d <= max && found < 0; d++) {
    const nv = new Int32Array(2 * d + 3);
    for (let k = -d; k <= d; k += 2) {
      const get = (kk: number) => (kk < -(d - 1) || kk > d - 1 ? -1 : (v[kk + (d - 1) + 1] as number));
      let x: number;
      if (k === -d || (k !== d && get(k - 1) < get(k + 1))) x = get(k + 1);
      else x = get(k - 1) + 1;
      if (d === 0) x = 0;
      let y = x - k;
      while (x < n && y < m && same(a[x] as Line, b[y] as Line)) {
        x++;
        y++;
      }
      nv[k + d + 1] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
    trace.push(nv);
    v = nv;
  }
  // walk back from (n, m)
  const ops: Op[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    const k = x - y;
    if (d === 0) {
      while (x > 0 && y > 0) ops.push({ t: '=', a: --x, b: --y });
      break;
    }
    const prev = trace[d - 1] as Int32Array;
    const get = (kk: number) => (kk < -(d - 1) || kk > d - 1 ? -1 : (prev[kk + (d - 1) + 1] as number));
    const down = k === -d || (k !== d && get(k - 1) < get(k + 1));
    const pk = down ? k + 1 : k - 1;
    const px = get(pk);
    const py = px - pk;
    while (x > (down ? px : px + 1) && y > (down ? py + 1 : py)) ops.push({ t: '=', a: --x, b: --y });
    if (down) ops.push({ t: '+', a: x, b: --y });
    else ops.push({ t: '-', a: --x, b: y });
  }
  return ops.reverse();
}

function emit(prefix: string, line: Line): string {
  return `${prefix}${line.text}\n${line.eol ? '' : '\\ No newline at end of file\n'}`;
}

const range = (start: number, len: number) => (len === 1 ? `${start}` : `${start},${len}`);

/**
 * Unified diff of one file, `--- a/<path>` / `+++ b/<path>`, for `patch -p1`.
 * Returns '' when the texts are equal.
 */
export function unifiedDiff(path: string, oldText: string, newText: string, context = 3): string {
  if (oldText === newText) return '';
  const a = splitLines(oldText);
  const b = splitLines(newText);
  const ops = editScript(a, b);
  const changed = ops.map((o, i) => (o.t === '=' ? -1 : i)).filter((i) => i >= 0);
  let out = `--- a/${path}\n+++ b/${path}\n`;
  let i = 0;
  while (i < changed.length) {
    // extend the hunk while the next change is within 2*context equal lines
    let j = i;
    while (j + 1 < changed.length && (changed[j + 1] as number) - (changed[j] as number) <= 2 * context + 1) j++;
    const from = Math.max(0, (changed[i] as number) - context);
    const to = Math.min(ops.length - 1, (changed[j] as number) + context);
    const hunk = ops.slice(from, to + 1);
    const first = hunk[0] as Op;
    const aLen = hunk.filter((o) => o.t !== '+').length;
    const bLen = hunk.filter((o) => o.t !== '-').length;
    // GNU diff: an empty range starts at the line before it
    const aStart = aLen === 0 ? first.a : first.a + 1;
    const bStart = bLen === 0 ? first.b : first.b + 1;
    out += `@@ -${range(aStart, aLen)} +${range(bStart, bLen)} @@\n`;
    for (const o of hunk) {
      if (o.t === '=') out += emit(' ', a[o.a] as Line);
      else if (o.t === '-') out += emit('-', a[o.a] as Line);
      else out += emit('+', b[o.b] as Line);
    }
    i = j + 1;
  }
  return out;
}
