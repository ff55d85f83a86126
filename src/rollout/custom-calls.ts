import { request } from 'undici';
import type { CheckResult } from './checks.js';
import { fillQuery, judgeQuery, judgeWebhook, oneValue, result, type CheckContext, type CustomCheck, type CustomCheckDeps, type QueryValue, type WebhookAnswer } from './custom.js';

/**
 * The plan's own checks asked, each tick: the webhooks POSTed, the queries sent. Apart from
 * custom.ts (the checks read and each answer judged) so that reading a plan loads no HTTP client:
 * the CLI's flag tables read the plan's defaults, and must run on a Node too old for undici.
 */

/** One webhook check: a POST of the context, its answer within the check's timeout. */
async function askWebhook(check: Extract<CustomCheck, { kind: 'webhook' }>, context: CheckContext, stopped: AbortSignal): Promise<WebhookAnswer> {
  try {
    const res = await request(check.webhook, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'drum-splitter' },
      body: JSON.stringify({ check: check.name, ...context }),
      headersTimeout: check.timeoutMs,
      bodyTimeout: check.timeoutMs,
      signal: AbortSignal.any([AbortSignal.timeout(check.timeoutMs), stopped]),
    });
    return { status: res.statusCode, body: await res.body.text() };
  } catch (err) {
    return { error: (err as Error).name === 'TimeoutError' ? `no answer within ${check.timeoutMs} ms` : (err as Error).message };
  }
}

/**
 * Every custom check for the tick at `at`, all at once; never rejects (each failure is its own
 * check's inconclusive result).
 */
export async function gatherCustomChecks(checks: readonly CustomCheck[], context: CheckContext, at: number, stopped: AbortSignal, deps: CustomCheckDeps): Promise<CheckResult[]> {
  const sides = { canary: context.canary, baseline: context.baseline };
  return Promise.all(
    checks.map(async (check) => {
      if (check.kind === 'webhook') return judgeWebhook(check, await askWebhook(check, context, stopped));
      const { query } = deps;
      if (query === undefined) return result(check, 'inconclusive', null, null, 'query checks need Prometheus (drum-splitter controller)');
      const ask = async (swapped: boolean): Promise<QueryValue> => {
        try {
          return oneValue(await query(fillQuery(check.query, sides, swapped), at, stopped));
        } catch (err) {
          return { error: (err as Error).message };
        }
      };
      if (check.max !== undefined) return judgeQuery(check, await ask(false));
      const [canary, baseline] = await Promise.all([ask(false), ask(true)]);
      return judgeQuery(check, canary, baseline);
    }),
  );
}
