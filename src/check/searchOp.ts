/**
 * The search's input: one operation of one key, shared by the search, its
 * pruning and the shrinker (its own module so prune.ts need not import
 * search.ts, which imports prune.ts).
 */
import { HistoryOp, OpKind } from './history.js';
import { KvCall } from './kvModel.js';

/** One operation of one key as the search sees it. */
export interface SearchOp extends KvCall {
  /** Position in the key's history (ties broken by it, so the search is deterministic). */
  id: number;
  op: OpKind;
  value: string;
  /** undefined = indeterminate */
  result: number | string | undefined;
  invoke: number;
  /** Infinity for an indeterminate operation */
  complete: number;
  /**
   * May be skipped instead of linearized (it took effect before the history
   * window began, into its unknown starting value); if linearized, its result
   * counts as usual.
   */
  optional?: boolean;
  src: HistoryOp;
}
