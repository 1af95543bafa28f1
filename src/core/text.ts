/**
 * Text that may be larger than one JavaScript string can hold (V8 strings
 * end near 512 MB; a 10-minute soak's history is 700 MB): a file's content
 * as one string or as chunks that each end at a line break (files.ts
 * readTextChunks). Parsers walk it line by line. Pure.
 */
export type Text = string | readonly string[];

/**
 * The lines of `text`, without their '\n' (a '\r' before it stays). With
 * `completeOnly`, a last line that has no '\n' yet (a file still being
 * appended to) is left out.
 */
export function* linesOf(text: Text, o: { completeOnly?: boolean } = {}): Generator<string> {
  const chunks = typeof text === 'string' ? [text] : text;
  for (let c = 0; c < chunks.length; c++) {
    let s = chunks[c]!;
    if (o.completeOnly && c === chunks.length - 1) s = s.slice(0, s.lastIndexOf('\n') + 1);
    let from = 0;
    while (from < s.length) {
      const nl = s.indexOf('\n', from);
      if (nl < 0) {
        yield s.slice(from);
        break;
      }
      yield s.slice(from, nl);
      from = nl + 1;
    }
  }
}

/** True when there is no text at all. */
export function isEmptyText(text: Text): boolean {
  return typeof text === 'string' ? text.length === 0 : text.every((c) => c.length === 0);
}

/** Several texts as one (the histories of several clients): their chunks in order; linesOf reads each chunk's lines whole. */
export function joinTexts(texts: readonly Text[]): Text {
  if (texts.length === 1) return texts[0]!;
  return texts.flatMap((t) => (typeof t === 'string' ? [t] : [...t]));
}
