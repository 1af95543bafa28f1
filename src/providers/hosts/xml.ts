/**
 * A small, strict XML parser for the subset RSpec manifests use: elements,
 * attributes, namespace prefixes (resolved to URIs), comments, CDATA,
 * processing instructions, character and the five predefined entity
 * references. No DTDs (a DOCTYPE with an internal subset is refused, so no
 * entity expansion), no external anything. Pure: text in, tree or XmlError out.
 *
 * Kept behind `XmlParse` so a library (e.g. fast-xml-parser) can replace it
 * with an adapter that produces the same `XmlElement` tree.
 */

export interface XmlElement {
  /** Local name, without the prefix. */
  local: string;
  /** Namespace URI ('' when the element is in no namespace). */
  ns: string;
  /** Attributes by their name as written (`client_id`, `xsi:schemaLocation`); xmlns declarations are left out. */
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element (CDATA included, entities decoded). */
  text: string;
  /** 1-based line of the start tag, for diagnostics. */
  line: number;
}

export type XmlParse = (text: string) => XmlElement;

export class XmlError extends Error {
  constructor(message: string, public readonly line: number, public readonly column: number) {
    super(`line ${line}, column ${column}: ${message}`);
    this.name = 'XmlError';
  }
}

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const NAME_RE = /^[A-Za-z_][A-Za-z0-9._-]*(?::[A-Za-z_][A-Za-z0-9._-]*)?$/;
// sticky: each matches exactly at lastIndex
const END_TAG_RE = /<\/([^\s>]+)\s*>/y;
const TAG_NAME_RE = /[^\s/>]+/y;
const WS_RE = /\s*/y;
const ATTR_RE = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/y;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

interface Frame {
  qname: string;
  el: XmlElement;
  scope: Map<string, string>;
}

export const parseXml: XmlParse = (src: string): XmlElement => {
  let i = 0;
  const text = src.charCodeAt(0) === 0xfeff ? src.slice(1) : src;

  // offsets of line starts, so positions map to line:column in O(log n)
  const lineStarts = [0];
  for (let k = 0; k < text.length; k++) if (text[k] === '\n') lineStarts.push(k + 1);
  const where = (at: number): [number, number] => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return [lo + 1, at - lineStarts[lo]! + 1];
  };
  const fail = (msg: string, at = i): never => {
    const [l, c] = where(at);
    throw new XmlError(msg, l, c);
  };

  const at = (re: RegExp, pos: number): RegExpExecArray | null => {
    re.lastIndex = pos;
    return re.exec(text);
  };

  const decode = (raw: string, at: number): string =>
    raw.replace(/&([^;&\s]*);?/g, (m, body: string) => {
      if (!m.endsWith(';')) fail(`'&' must start an entity reference such as &amp;`, at);
      if (body.startsWith('#x') || body.startsWith('#X')) {
        const cp = /^[0-9a-fA-F]+$/.test(body.slice(2)) ? parseInt(body.slice(2), 16) : NaN;
        if (!Number.isFinite(cp) || cp > 0x10ffff) fail(`bad character reference &${body};`, at);
        return String.fromCodePoint(cp);
      }
      if (body.startsWith('#')) {
        const cp = /^[0-9]+$/.test(body.slice(1)) ? parseInt(body.slice(1), 10) : NaN;
        if (!Number.isFinite(cp) || cp > 0x10ffff) fail(`bad character reference &${body};`, at);
        return String.fromCodePoint(cp);
      }
      const v = PREDEFINED[body];
      if (v === undefined) fail(`unknown entity &${body}; (only &lt; &gt; &amp; &quot; &apos; and character references)`, at);
      return v!;
    });

  const resolve = (qname: string, scope: Map<string, string>, isAttr: boolean, at: number): { ns: string; local: string } => {
    const colon = qname.indexOf(':');
    if (colon < 0) return { ns: isAttr ? '' : (scope.get('') ?? ''), local: qname };
    const prefix = qname.slice(0, colon);
    const ns = prefix === 'xml' ? XML_NS : scope.get(prefix);
    if (ns === undefined) fail(`namespace prefix '${prefix}' is not declared`, at);
    return { ns: ns!, local: qname.slice(colon + 1) };
  };

  const stack: Frame[] = [];
  let root: XmlElement | undefined;
  const rootScope = new Map<string, string>();

  const addText = (s: string) => {
    const top = stack[stack.length - 1];
    if (top) top.el.text += s;
    else if (s.trim() !== '') fail('text outside the root element');
  };

  while (i < text.length) {
    const lt = text.indexOf('<', i);
    if (lt < 0) {
      addText(decode(text.slice(i), i));
      i = text.length;
      break;
    }
    if (lt > i) addText(decode(text.slice(i, lt), i));
    i = lt;
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
    } else if (text.startsWith('<![CDATA[', i)) {
      const end = text.indexOf(']]>', i + 9);
      if (end < 0) fail('unterminated CDATA section');
      if (!stack.length) fail('CDATA outside the root element');
      addText(text.slice(i + 9, end));
      i = end + 3;
    } else if (text.startsWith('<?', i)) {
      const end = text.indexOf('?>', i + 2);
      if (end < 0) fail('unterminated processing instruction');
      i = end + 2;
    } else if (text.startsWith('<!DOCTYPE', i)) {
      const end = text.indexOf('>', i);
      if (end < 0) fail('unterminated DOCTYPE');
      if (text.slice(i, end).includes('[')) fail('DOCTYPE internal subsets are not supported');
      i = end + 1;
    } else if (text.startsWith('</', i)) {
      const m = at(END_TAG_RE, i);
      if (!m) fail('malformed end tag');
      const top = stack.pop();
      if (!top) fail(`end tag </${m![1]}> without a start tag`);
      if (top!.qname !== m![1]) fail(`end tag </${m![1]}> does not match <${top!.qname}> from line ${top!.el.line}`);
      i += m![0].length;
    } else {
      const start = i;
      i++;
      const nm = at(TAG_NAME_RE, i);
      if (!nm || !NAME_RE.test(nm[0])) fail('malformed start tag');
      const qname = nm![0];
      i += qname.length;
      const rawAttrs: [string, string, number][] = [];
      let selfClosing = false;
      for (;;) {
        const ws = at(WS_RE, i)![0];
        i += ws.length;
        if (i >= text.length) fail(`unterminated start tag <${qname}>`, start);
        if (text[i] === '>') {
          i++;
          break;
        }
        if (text.startsWith('/>', i)) {
          i += 2;
          selfClosing = true;
          break;
        }
        if (!ws) fail(`expected whitespace before an attribute in <${qname}>`);
        const am = at(ATTR_RE, i);
        if (!am || !NAME_RE.test(am[1]!)) fail(`malformed attribute in <${qname}>`);
        const value = am![2] ?? am![3] ?? '';
        if (value.includes('<')) fail(`'<' in the value of attribute ${am![1]}`);
        if (rawAttrs.some(([n]) => n === am![1])) fail(`attribute ${am![1]} given twice in <${qname}>`);
        rawAttrs.push([am![1]!, decode(value, i), i]);
        i += am![0].length;
      }
      const parentScope = stack[stack.length - 1]?.scope ?? rootScope;
      let scope = parentScope;
      for (const [n, v] of rawAttrs) {
        if (n === 'xmlns' || n.startsWith('xmlns:')) {
          if (scope === parentScope) scope = new Map(parentScope);
          scope.set(n === 'xmlns' ? '' : n.slice(6), v);
        }
      }
      const attrs: Record<string, string> = {};
      for (const [n, v, at] of rawAttrs) {
        if (n === 'xmlns' || n.startsWith('xmlns:')) continue;
        resolve(n, scope, true, at); // undeclared prefixes are errors
        attrs[n] = v;
      }
      const { ns, local } = resolve(qname, scope, false, start);
      const el: XmlElement = { local, ns, attrs, children: [], text: '', line: where(start)[0] };
      const parent = stack[stack.length - 1];
      if (parent) parent.el.children.push(el);
      else if (root) fail('a second root element', start);
      else root = el;
      if (!selfClosing) stack.push({ qname, el, scope });
    }
  }
  if (stack.length) fail(`<${stack[stack.length - 1]!.qname}> from line ${stack[stack.length - 1]!.el.line} is never closed`);
  if (!root) fail('no root element');
  return root!;
};

/** Direct children with this local name (and namespace, when given). */
export function childrenOf(el: XmlElement, local: string, ns?: string): XmlElement[] {
  return el.children.filter((c) => c.local === local && (ns === undefined || c.ns === ns));
}

export function childOf(el: XmlElement, local: string, ns?: string): XmlElement | undefined {
  return el.children.find((c) => c.local === local && (ns === undefined || c.ns === ns));
}
