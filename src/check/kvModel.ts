/**
 * The sequential specification of our key-value store, for one key: the state
 * is the key's value (a string, initially ""), and every operation either fits
 * the state (giving the next state) or does not.
 */
import { OpKind } from './history.js';

/** Values are capped at this many bytes by the replica: the part beyond it is dropped. */
export const VALUE_CAP = 1024;

/** What the model needs of an operation; `result` undefined = indeterminate (it returned nothing). */
export interface KvCall {
  op: OpKind;
  /** put/append argument ("" for get) */
  value: string;
  result: number | string | undefined;
}

/** The value a write leaves, before its result is compared. */
export function kvApply(state: string, call: KvCall, cap = VALUE_CAP): string {
  if (call.op === 'put') return call.value.length > cap ? call.value.slice(0, cap) : call.value;
  if (call.op === 'append') {
    if (state.length >= cap) return state;
    const next = state + call.value;
    return next.length > cap ? next.slice(0, cap) : next;
  }
  return state;
}

/** The next state if `call` can take effect in `state` with the result it returned; null if it cannot. */
export function kvStep(state: string, call: KvCall, cap = VALUE_CAP): string | null {
  if (call.op === 'get') return call.result === undefined || call.result === state ? state : null;
  const next = kvApply(state, call, cap);
  // put and append return the new length
  return call.result === undefined || call.result === next.length ? next : null;
}

/**
 * The length a write leaves in a state known only by its length, if its
 * result fits; null if it cannot take effect there.
 */
export function kvStepLength(length: number, call: KvCall, cap = VALUE_CAP): number | null {
  if (call.op === 'get') return null;
  const next = call.op === 'put' ? Math.min(call.value.length, cap) : length >= cap ? length : Math.min(length + call.value.length, cap);
  return call.result === undefined || call.result === next ? next : null;
}

/** What `call` would have returned in `state`. */
export function kvResultIn(state: string, call: KvCall, cap = VALUE_CAP): number | string {
  return call.op === 'get' ? state : kvApply(state, call, cap).length;
}
