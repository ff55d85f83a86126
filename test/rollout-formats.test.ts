/** Each webhook format, for every action, checked against the service's documented schema (test/fixtures/webhooks/). */
import t from 'tap';
import { cut, dedupKey, nextLine, renderEvent, summaryLines, tone, verificationLines } from '../src/rollout/formats.js';
import type { RolloutEvent } from '../src/rollout/notify.js';
import type { NotifyTarget } from '../src/rollout/plan.js';
import { schemaErrors } from './helpers/webhooks.js';

const CTX = { canary: 'fastapi', baseline: 'flask' };
const KEY = 'R0123456789abcdef0123456789abcde';
const TARGETS: Record<string, NotifyTarget> = {
  json: { url: 'http://127.0.0.1:1/', format: 'json' },
  slack: { url: 'http://127.0.0.1:1/', format: 'slack' },
  teams: { url: 'http://127.0.0.1:1/', format: 'teams' },
  pagerduty: { url: 'http://127.0.0.1:1/', format: 'pagerduty', routingKey: KEY },
};

const event = (action: string, extra: Record<string, unknown> = {}): RolloutEvent => ({
  action,
  text: `drum-splitter rollout (fastapi): something happened (${action}) <with> & marks`,
  from: 10,
  to: 0,
  at: '2026-12-07T11:00:00.000Z',
  phase: 'rolled_back',
  who: 'rollout',
  reason: null,
  ...extra,
});

const VERIFICATION = {
  items: [
    { name: 'ping', ok: true, detail: 'GET /ping → 200' },
    { name: 'info', ok: false, detail: "GET /info/ names the canary's server: fastapi 1.16" },
    { name: 'predict_batch', ok: null, detail: 'no multi-row CSV prediction to replay' },
  ],
};
const SUMMARY = {
  step: 1,
  weight: 5,
  heldMs: 3_600_000,
  upstreams: {
    flask: { requests: 12_040, errorRate: 0.0005, p50: 0.012, p99: 0.0401, rss: 512 * 2 ** 20 },
    fastapi: { requests: 634, errorRate: null, p50: null, p99: null, rss: null },
  },
};
const MISMATCH = { request: { method: 'POST', path: '/predict/', body: 'a,b\n1,2\n' }, baseline: { status: 200, body: '{"predictions":[1.5]}' }, canary: { status: 200, body: '{"predictions":[1.6]}' } };

/** Every action the controller and the other helpers' items send, with the extra fields some carry. */
const EVENTS: RolloutEvent[] = [
  ...['start', 'promote', 'await_approval', 'approve', 'reduce', 'rollback', 'recovered', 'pause', 'resume', 'abort', 'complete', 'hold', 'suspect', 'shadow_pass', 'promote_full', 'retry', 'hook'].map((a) => event(a)),
  event('verified', { verification: { items: [VERIFICATION.items[0]] } }),
  event('verification_failed', { verification: VERIFICATION }),
  event('summary', { summary: SUMMARY }),
  event('rollback', { mismatch: MISMATCH }),
  event('promote', { reason: 'ship it', who: 'alice', phase: 'running', next: { weight: 25, inMs: 172_800_000, approve: true } }),
];

t.test('every action renders, in every format, valid against the service schema', async (t) => {
  for (const e of EVENTS) {
    for (const format of ['slack', 'teams'] as const) {
      const payload = renderEvent(TARGETS[format]!, e, CTX);
      t.same(schemaErrors(format, payload), [], `${format} ${e.action}`);
    }
    const pd = renderEvent(TARGETS.pagerduty!, e, CTX);
    if (pd !== undefined) t.same(schemaErrors('pagerduty', pd), [], `pagerduty ${e.action}`);
    t.equal(renderEvent(TARGETS.json!, e, CTX), e, `json ${e.action}: the event as it is`);
  }
});

t.test('PagerDuty: a trigger on rollback or verification failure, a resolve with the same key on recovery or the end; nothing else pages', async (t) => {
  const table: [string, string | undefined, string | undefined, string | undefined][] = [
    // action, event_action, severity, incident
    ['rollback', 'trigger', 'error', 'rollout'],
    ['verification_failed', 'trigger', 'critical', 'baseline'],
    ['recovered', 'resolve', undefined, 'rollout'],
    ['complete', 'resolve', undefined, 'rollout'],
    ['abort', 'resolve', undefined, 'rollout'],
    ['start', 'resolve', undefined, 'rollout'],
    ['retry', 'resolve', undefined, 'rollout'],
    ['verified', 'resolve', undefined, 'baseline'],
    ['promote', undefined, undefined, undefined],
    ['reduce', undefined, undefined, undefined],
    ['suspect', undefined, undefined, undefined],
    ['summary', undefined, undefined, undefined],
    ['await_approval', undefined, undefined, undefined],
  ];
  for (const [action, eventAction, severity, incident] of table) {
    const pd = renderEvent(TARGETS.pagerduty!, event(action, { verification: VERIFICATION }), CTX) as Record<string, unknown> | undefined;
    if (eventAction === undefined) {
      t.equal(pd, undefined, `${action}: not sent`);
      continue;
    }
    t.match(pd, { routing_key: KEY, event_action: eventAction, dedup_key: `drum-splitter/fastapi/${incident}` }, action);
    if (severity !== undefined) t.match(pd, { payload: { severity, source: 'drum-splitter/fastapi', timestamp: '2026-12-07T11:00:00.000Z', class: action } }, action);
    else t.notOk('payload' in pd!, `${action}: a resolve carries no payload`);
  }
  t.equal(renderEvent(TARGETS.pagerduty!, event('rollback', { dryRun: true }), CTX), undefined, "a dry run's would-be rollback pages nobody");
  const trigger = renderEvent(TARGETS.pagerduty!, event('rollback', { mismatch: MISMATCH }), CTX) as { payload: { custom_details: Record<string, unknown>; component: string } };
  t.same(trigger.payload.custom_details.mismatch, MISMATCH, "the mismatch's request and both answers go in custom_details");
  t.equal(trigger.payload.component, 'fastapi');
  const failed = renderEvent(TARGETS.pagerduty!, event('verification_failed', { verification: VERIFICATION }), CTX) as { payload: { custom_details: Record<string, unknown>; component: string } };
  t.same(failed.payload.custom_details.verification, VERIFICATION);
  t.equal(failed.payload.component, 'flask', "a failed verification is the baseline's incident");
  t.equal(dedupKey({ canary: 'c'.repeat(400), baseline: 'b' }, 'rollout').length, 255, 'a dedup_key is cut to 255');
});

t.test('Slack: fallback text, a header, the text, the facts as fields, a section per detail, a context line; markup escaped', async (t) => {
  const m = renderEvent(TARGETS.slack!, event('verification_failed', { verification: VERIFICATION, reason: 'p99' }), CTX) as { text: string; blocks: Record<string, unknown>[] };
  t.equal(m.text, event('x').text.replace('(x)', '(verification_failed)'));
  t.same(m.blocks.map((b) => b.type), ['header', 'section', 'section', 'section', 'context']);
  t.match(m.blocks[0], { text: { type: 'plain_text', text: 'Verification failed: fastapi' } });
  t.match(m.blocks[1], { text: { type: 'mrkdwn', text: /^:red_circle: .*&lt;with&gt; &amp; marks$/ } });
  t.match(m.blocks[2], { fields: [{ text: '*Canary*\nfastapi: 10% → 0%' }, { text: '*Baseline*\nflask' }, { text: '*Phase*\nrolled_back' }, { text: '*By*\nrollout' }, { text: '*Reason*\np99' }, { text: '*At*\n2026-12-07T11:00:00.000Z' }] });
  t.match(m.blocks[3], { text: { text: /^\*Verification of the baseline\*\n✔ ping: GET \/ping → 200\n✘ info: .*\n– predict_batch: no multi-row CSV prediction to replay \(skipped\)$/ } });
  const mismatch = renderEvent(TARGETS.slack!, event('rollback', { mismatch: MISMATCH }), CTX) as { blocks: { text?: { text: string } }[] };
  t.match(mismatch.blocks[3]!.text!.text, /^\*The differing answers\*\n```\{\n "request": /, 'a mismatch is a code block of its JSON');
});

t.test('Teams: a MessageCard with a colour per tone, the facts, a section per detail', async (t) => {
  const c = renderEvent(TARGETS.teams!, event('summary', { summary: SUMMARY }), CTX) as Record<string, unknown> & { sections: Record<string, unknown>[] };
  t.match(c, { '@type': 'MessageCard', '@context': 'https://schema.org/extensions', themeColor: '1565C0', title: 'drum-splitter rollout: Summary (fastapi)' });
  t.match(c.sections[0], { facts: [{ name: 'Canary', value: 'fastapi: 10% → 0%' }, { name: 'Baseline', value: 'flask' }] });
  t.match(c.sections[1], { activityTitle: 'Hourly summary', text: /^step 2 at 5% held 60 min {2}\nflask: 12,040 requests, 0.05% errors, p50 12 ms, p99 40.1 ms, RSS 512 MiB {2}\nfastapi: 634 requests, – errors, p50 –, p99 –, RSS –$/ });
  const mismatch = renderEvent(TARGETS.teams!, event('rollback', { mismatch: MISMATCH }), CTX) as { themeColor: string; sections: { text?: string }[] };
  t.equal(mismatch.themeColor, 'D32F2F');
  t.match(mismatch.sections[1]!.text, /^```\n\{/);
  t.same(['rollback', 'hold', 'verified', 'start'].map(tone), ['bad', 'warn', 'good', 'info']);
});

t.test('long text is cut to each limit, still valid', async (t) => {
  const long = 'x'.repeat(10_000);
  const upstreams = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`upstream-${i}`.repeat(5), SUMMARY.upstreams.flask]));
  const items = Array.from({ length: 100 }, (_, i) => ({ name: `item${i}`, ok: false, detail: long }));
  const e = event('verification_failed', { text: long, reason: long, who: long, verification: { items }, summary: { ...SUMMARY, upstreams }, mismatch: { body: long } });
  const slack = renderEvent(TARGETS.slack!, { ...e, action: long }, { canary: long, baseline: long });
  t.same(schemaErrors('slack', slack), []);
  const teams = renderEvent(TARGETS.teams!, e, { canary: long, baseline: long });
  t.same(schemaErrors('teams', teams), []);
  t.ok(Buffer.byteLength(JSON.stringify(teams)) < 28_000, 'under the 28 KB a Teams connector takes');
  const pd = renderEvent(TARGETS.pagerduty!, e, CTX) as { payload: { summary: string } };
  t.same(schemaErrors('pagerduty', pd), []);
  t.equal(pd.payload.summary.length, 1024);
  t.equal(cut('ab😀cd', 4), 'ab😀…', 'cut by code points, never inside one');
  t.equal(cut('abc', 3), 'abc');
});

t.test("the notice of what comes next: every step's notice says it before it comes", async (t) => {
  t.equal(nextLine({ weight: 25, inMs: 172_800_000, approve: true }), '25% in 48h if every check passes, once a person approves');
  t.equal(nextLine({ weight: 5, inMs: 1500.4, approve: false }), '5% in 1500ms if every check passes');
  t.equal(nextLine({ weight: null, inMs: 604_800_000, approve: true }), 'complete in 7d if every check passes');
  t.equal(nextLine({ weight: 5 }), undefined);
  t.equal(nextLine(undefined), undefined);
  const m = renderEvent(TARGETS.slack!, event('promote', { next: { weight: 25, inMs: 60_000, approve: false } }), CTX) as { blocks: { fields?: { text: string }[] }[] };
  t.match(m.blocks[2]!.fields!.map((f) => f.text), ['*Canary*\nfastapi: 10% → 0%', '*Baseline*\nflask', '*Phase*\nrolled_back', '*By*\nrollout', '*Next*\n25% in 1m if every check passes', '*At*\n2026-12-07T11:00:00.000Z']);
});

t.test('summary and verification lines: what is not there is left out', async (t) => {
  t.same(summaryLines(undefined), []);
  t.same(summaryLines({ upstreams: { a: 'no', b: { requests: 3 }, c: {} } }), ['b: 3 requests, – errors, p50 –, p99 –, RSS –', 'c: – requests, – errors, p50 –, p99 –, RSS –']);
  t.same(summaryLines({ weight: 5, upstreams: {} }), ['step ? at 5%']);
  t.same(summaryLines({ weight: 5, step: 0 }), ['step 1 at 5%']);
  t.same(verificationLines({ items: 'no' }), []);
  t.same(verificationLines(null), []);
  t.same(verificationLines({ items: [1, { name: 'ping', ok: true, detail: '200' }] }), ['✔ ping: 200']);
});
