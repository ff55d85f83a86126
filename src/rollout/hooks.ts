import { request } from 'undici';
import { formatDuration, type HookEvent, type RolloutHook } from './plan.js';

/**
 * The plan's lifecycle hooks: a JSON POST to each hook's URL, answered 2xx within its timeout or
 * failed. pre-step and confirm-step hooks gate a move (the controller carries it out only when
 * every one passes); post-rollout and rollback hooks are told, their answers only logged.
 */

/** One hook's answer: 2xx in time, or the status, or why there was none. */
export interface HookAnswer {
  readonly hook: string;
  readonly on: HookEvent;
  readonly url: string;
  readonly ok: boolean;
  /** The HTTP status; null when none came. */
  readonly status: number | null;
  /** Why no status came (refused, timed out); null when one did. */
  readonly error: string | null;
  /** How long the exchange took, in ms. */
  readonly ms: number;
}

/** One POST; never rejects. The whole exchange (the answer's body too) must end within the hook's timeout. */
export async function callHook(hook: RolloutHook, payload: Readonly<Record<string, unknown>>): Promise<HookAnswer> {
  const started = performance.now();
  const answer = (status: number | null, error: string | null): HookAnswer => ({
    hook: hook.name,
    on: hook.on,
    url: hook.url,
    ok: status !== null && status >= 200 && status < 300,
    status,
    error,
    ms: Math.round(performance.now() - started),
  });
  const timeout = AbortSignal.timeout(hook.timeoutMs);
  try {
    const res = await request(hook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hook: hook.name, on: hook.on, ...payload }),
      signal: timeout,
    });
    await res.body.dump();
    return answer(res.statusCode, null);
  } catch (err) {
    return answer(null, timeout.aborted ? `no answer within ${formatDuration(hook.timeoutMs)}` : (err as Error).message);
  }
}

/** The plan's hooks for `on`, each called in turn; the first that fails, or undefined when all pass (or there are none). */
export async function gateHooks(hooks: readonly RolloutHook[], on: readonly HookEvent[], payload: Readonly<Record<string, unknown>>): Promise<HookAnswer | undefined> {
  for (const event of on) {
    for (const hook of hooks.filter((h) => h.on === event)) {
      const answer = await callHook(hook, payload);
      if (!answer.ok) return answer;
    }
  }
  return undefined;
}

/** "pre-step hook "load-test" answered 503 after 12 ms", for decisions and logs. */
export function describeAnswer(a: HookAnswer): string {
  const outcome = a.status === null ? `failed (${a.error!})` : `answered ${a.status}`;
  return `${a.on} hook "${a.hook}" ${outcome} after ${a.ms} ms`;
}
