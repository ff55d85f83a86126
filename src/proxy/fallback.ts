import type { FallbackReason } from '../observe/outcomes.js';
import { CLOSED, type Blame, type FailedAt } from './forward.js';

/**
 * --fallback: what a request the split sent to an upstream other than the baseline may do when
 * that upstream fails it. `off`: nothing; `connect`: go to the baseline if not a byte of it was
 * written (nginx's `proxy_next_upstream error timeout` for a request not yet sent); `safe`:
 * also a GET, HEAD or OPTIONS request whose answer had not begun.
 */
export const FALLBACK_MODES = ['off', 'connect', 'safe'] as const;
export type FallbackMode = (typeof FALLBACK_MODES)[number];

/** Methods sent again after the upstream had them (`safe`): RFC 9110's safe methods, minus TRACE. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A failed forward, as the fallback decision sees it. */
export interface FailedForward {
  /** How far it had come. */
  readonly at: FailedAt;
  /** The error's code (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT, ...), if it has one. */
  readonly code: string | undefined;
  readonly blame: Blame;
  readonly method: string;
}

/**
 * Whether a failed forward goes to the baseline under `mode`, and why (drum_fallback_total's
 * reason); undefined: the client is answered with the failure. Only the upstream's own
 * failures qualify, never once the answer has begun; whether the body can be sent again, and
 * whether the upstream is the baseline, are the caller's to know.
 */
export function fallbackReason(mode: FallbackMode, f: FailedForward): FallbackReason | undefined {
  if (mode === 'off' || f.blame !== 'upstream' || f.at === 'answer') return undefined;
  if (f.at === 'connect') {
    if (f.code === 'ECONNREFUSED') return 'refused';
    if (CLOSED.has(f.code)) return 'reset';
    return f.code === 'UND_ERR_CONNECT_TIMEOUT' ? 'timeout' : 'connect_failed';
  }
  // Written: the upstream may have acted on it, so only a method that may be repeated, and only for a dead connection.
  if (mode !== 'safe' || !SAFE_METHODS.has(f.method)) return undefined;
  if (CLOSED.has(f.code)) return 'reset';
  return f.code === 'UND_ERR_HEADERS_TIMEOUT' ? 'timeout' : undefined;
}
