/** The history file the C client writes with --history: what parses, and what is refused with the line and field named. */
import { describe, expect, it } from 'vitest';
import { DiagnosticsError } from '../../src/core/diagnostics.js';
import { formatHistoryLine, parseHistory } from '../../src/check/history.js';

const GOOD = [
  '{"client":17,"key":"k5","op":"put","value":"11.3;","invoke":1234,"complete":1300,"status":"ok","result":5}',
  '',
  '{"client":17,"key":"k5","op":"append","value":"11.4;","invoke":1301,"complete":1390,"status":"ok","result":10}',
  '{"client":17,"key":"k5","op":"get","invoke":1391,"complete":1450,"status":"ok","result":"11.3;11.4;"}',
  '   ',
  '{"client":18,"key":"k9","op":"put","value":"12.7;","invoke":2000,"status":"timeout"}',
].join('\n');

function problems(text: string): DiagnosticsError {
  try {
    parseHistory(text, 'h.jsonl');
  } catch (e) {
    if (e instanceof DiagnosticsError) return e;
    throw e;
  }
  throw new Error('expected a DiagnosticsError');
}

const line = (o: Record<string, unknown>) =>
  JSON.stringify({ client: 1, key: 'k', op: 'put', value: 'v', invoke: 10, complete: 20, status: 'ok', result: 1, ...o });

describe('parseHistory', () => {
  it('reads the four kinds of line, skips blank lines, and numbers ops by file line', () => {
    const ops = parseHistory(GOOD + '\n', 'h.jsonl');
    expect(ops).toEqual([
      { client: 17, key: 'k5', op: 'put', value: '11.3;', invoke: 1234, complete: 1300, status: 'ok', result: 5, line: 1 },
      { client: 17, key: 'k5', op: 'append', value: '11.4;', invoke: 1301, complete: 1390, status: 'ok', result: 10, line: 3 },
      { client: 17, key: 'k5', op: 'get', invoke: 1391, complete: 1450, status: 'ok', result: '11.3;11.4;', line: 4 },
      { client: 18, key: 'k9', op: 'put', value: '12.7;', invoke: 2000, status: 'timeout', line: 6 },
    ]);
  });

  it('formatHistoryLine writes back exactly the lines it read', () => {
    const ops = parseHistory(GOOD, 'h.jsonl');
    expect(ops.map(formatHistoryLine).join('\n')).toBe(GOOD.split('\n').filter((l) => l.trim()).join('\n'));
  });

  it('takes keys and values as any JSON string, and CRLF line ends', () => {
    const ops = parseHistory(line({ key: 'a "b"\n\u00e9', value: '\t;' }) + '\r\n', 'h.jsonl');
    expect(ops[0]).toMatchObject({ key: 'a "b"\n\u00e9', value: '\t;' });
  });

  it('refuses bad JSON and non-objects, naming the line', () => {
    const e = problems(`${line({})}\n{"client":1,\n[1,2]`);
    expect(e.diagnostics.map((d) => [d.code, d.subject])).toEqual([
      ['HISTORY_JSON', 'h.jsonl:2'],
      ['HISTORY_JSON', 'h.jsonl:3'],
    ]);
    expect(e.message).toMatch(/h\.jsonl:2: not valid JSON/);
  });

  it('names the line and the field of every wrong field, all at once', () => {
    const e = problems(
      [
        line({ op: 'cas' }),
        line({ complete: 5 }),
        line({ result: undefined }),
        line({ op: 'get', value: undefined, result: 3 }),
        line({ op: 'append', result: 'abc' }),
        line({ value: undefined }),
        line({ client: -1 }),
        line({ client: 'a' }),
        line({ invoke: 1.5 }),
        line({ status: 'failed' }),
        line({ status: 'timeout' }),
        line({ extra: 1 }),
        line({ op: 'get', value: 'x', result: '' }),
        line({ key: 3 }),
      ].join('\n'),
    );
    expect(e.diagnostics.map((d) => d.subject)).toEqual([
      'h.jsonl:1 op',
      'h.jsonl:2 complete',
      'h.jsonl:3 result',
      'h.jsonl:4 result',
      'h.jsonl:5 result',
      'h.jsonl:6 value',
      'h.jsonl:7 client',
      'h.jsonl:8 client',
      'h.jsonl:9 invoke',
      'h.jsonl:10 status',
      'h.jsonl:11 complete',
      'h.jsonl:11 result',
      'h.jsonl:12 extra',
      'h.jsonl:13 value',
      'h.jsonl:14 key',
    ]);
    expect(e.diagnostics.every((d) => d.code === 'HISTORY_FIELD')).toBe(true);
    expect(e.message).toContain('h.jsonl:1 op: unknown op "cas"; expected put, append, get');
    expect(e.message).toContain('h.jsonl:2 complete: 5 is before invoke 10');
    expect(e.message).toContain('h.jsonl:4 result: get returns the value (a string), got 3');
  });

  it('refuses a client whose operations overlap in time, naming both lines', () => {
    const e = problems(
      [
        line({ client: 1, invoke: 10, complete: 20 }),
        line({ client: 2, invoke: 15, complete: 25 }), // another client may overlap
        line({ client: 1, invoke: 19, complete: 30 }),
        line({ client: 3, invoke: 100, status: 'timeout', complete: undefined, result: undefined }),
        line({ client: 3, invoke: 100, complete: 120 }), // gave up, then started again at once: fine
        line({ client: 3, invoke: 105, complete: 110 }), // but not while the next one runs
      ].join('\n'),
    );
    expect(e.diagnostics.map((d) => [d.code, d.subject])).toEqual([
      ['HISTORY_OVERLAP', 'h.jsonl:3 invoke'],
      ['HISTORY_OVERLAP', 'h.jsonl:6 invoke'],
    ]);
    expect(e.diagnostics[0]!.message).toBe('client 1 starts an operation at 19 before its operation on line 1 completed (20)');
  });

  it('a client whose operations only touch (complete = next invoke) is fine', () => {
    expect(parseHistory([line({ invoke: 10, complete: 20 }), line({ invoke: 20, complete: 20 }), line({ invoke: 20, complete: 30 })].join('\n'))).toHaveLength(3);
  });

  it('lists 20 problems and counts the rest', () => {
    const e = problems(Array.from({ length: 25 }, () => 'nope').join('\n'));
    expect(e.diagnostics).toHaveLength(21);
    expect(e.diagnostics[20]).toMatchObject({ code: 'HISTORY_MORE', message: 'and 5 more problems' });
  });

  it('an empty file is an empty history', () => {
    expect(parseHistory('', 'h.jsonl')).toEqual([]);
    expect(parseHistory('\n\n', 'h.jsonl')).toEqual([]);
  });
});
