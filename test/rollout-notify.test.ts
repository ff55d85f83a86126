/** Rollout webhooks against real HTTP receivers on 127.0.0.1: bodies, order, failures counted and logged. */
import type { ServerResponse } from 'node:http';
import { pino } from 'pino';
import { Counter } from 'prom-client';
import t, { type Test } from 'tap';
import { InputError } from '../src/common/input-error.js';
import { Notifier, type RolloutEvent } from '../src/rollout/notify.js';
import type { NotifyTarget } from '../src/rollout/plan.js';
import { schemaErrors } from './helpers/webhooks.js';
import { freePort, startUpstream, type TestUpstream } from './helpers/net.js';
import { until } from './helpers/wait.js';

interface LogLine {
  level: number;
  msg: string;
  url?: string;
  reason?: string;
  action?: string;
  status?: number;
  error?: string;
}

/** A notifier with its own counter and a logger into memory. */
function setup(urls: (string | NotifyTarget)[], opts: { timeoutMs?: number; maxQueue?: number; context?: { canary: string; baseline: string } } = {}) {
  const logged: string[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => logged.push(l) });
  const failures = new Counter({ name: 'x_total', help: 'x', labelNames: ['reason'], registers: [] });
  const notifier = new Notifier(urls, { log, failures, ...opts });
  return {
    notifier,
    logged,
    lines: () => logged.map((l) => JSON.parse(l) as LogLine),
    /** The count of one reason; 0 when it never happened. */
    count: async (reason: string) => (await failures.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0,
    total: async () => (await failures.get()).values.reduce((n, v) => n + v.value, 0),
  };
}

const event = (action: string, extra: Record<string, unknown> = {}): RolloutEvent => ({
  action,
  text: `canary error rate 4.8% (n=1,204) over 1% → to 0% (${action})`,
  from: 10,
  to: 0,
  at: '2025-01-02T03:04:05.000Z',
  ...extra,
});

/** A receiver that holds every request until the test lets it answer. */
async function heldReceiver(t: Test): Promise<{ up: TestUpstream; held: ServerResponse[]; release: () => void }> {
  const held: ServerResponse[] = [];
  let open = false;
  const up = await startUpstream('held', (_req, res) => (open ? res.end('ok') : held.push(res)));
  t.teardown(() => up.close());
  return {
    up,
    held,
    release: () => {
      open = true;
      for (const res of held.splice(0)) res.end('ok');
    },
  };
}

const bodies = (up: TestUpstream) => up.seen.map((s) => JSON.parse(s.body.toString('utf8')) as RolloutEvent);

t.test('a receiver gets the event as JSON, with text at the top level, headers set', async (t) => {
  const up = await startUpstream('hook');
  t.teardown(() => up.close());
  const n = setup([`${up.url}/hook`]);
  const e = event('rollback', { verdict: { errorRate: 0.048, n: 1204, limit: 0.01 } });
  n.notifier.send(e);
  await n.notifier.flush();
  t.equal(up.seen.length, 1);
  const seen = up.seen[0]!;
  t.equal(seen.method, 'POST');
  t.equal(seen.url, '/hook');
  t.equal(seen.headers['content-type'], 'application/json');
  t.equal(seen.headers['user-agent'], 'drum-splitter');
  t.equal(seen.body.toString('utf8'), JSON.stringify(e));
  const got = JSON.parse(seen.body.toString('utf8')) as Record<string, unknown>;
  t.equal(got.text, e.text, 'Slack shows "text"');
  t.strictSame(got, e);
  t.equal(await n.total(), 0);
  t.strictSame(n.logged, []);
});

t.test('two URLs both get every event', async (t) => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const n = setup([a.url, `${b.url}/other`]);
  n.notifier.send(event('promote', { from: 5, to: 25 }));
  n.notifier.send(event('pause'));
  await n.notifier.flush();
  t.strictSame(bodies(a).map((e) => e.action), ['promote', 'pause']);
  t.strictSame(bodies(b).map((e) => e.action), ['promote', 'pause']);
  t.equal(b.seen[0]!.url, '/other');
  t.equal(await n.total(), 0);
});

t.test('per URL one at a time and in order; a slow receiver delays only its own', async (t) => {
  let inFlight = 0;
  let most = 0;
  // Answers late, so that deliveries sent in parallel would overlap here.
  const fast = await startUpstream('fast', (_req, res) => {
    most = Math.max(most, ++inFlight);
    setTimeout(() => {
      inFlight--;
      res.end();
    }, 10);
  });
  t.teardown(() => fast.close());
  const slow = await heldReceiver(t);
  const n = setup([slow.up.url, fast.url]);
  const actions = ['promote', 'hold', 'promote', 'reduce', 'rollback', 'abort'];
  for (const a of actions) n.notifier.send(event(a));

  await until(() => fast.seen.length === actions.length);
  t.strictSame(bodies(fast).map((e) => e.action), actions, 'order kept');
  t.equal(most, 1, 'never two at once to one URL');
  t.equal(slow.up.seen.length, 1, 'the held receiver has only the first: the rest wait for its answer');

  let flushed = false;
  const flushing = n.notifier.flush().then(() => (flushed = true));
  await until(() => slow.held.length === 1);
  t.notOk(flushed, 'flush waits for the held receiver');
  slow.release();
  await flushing;
  t.strictSame(bodies(slow.up).map((e) => e.action), actions, 'order kept behind the slow answer');
  t.equal(await n.total(), 0);
});

t.test('a non-2xx answer counts "status", logged with the URL minus its query string', async (t) => {
  const up = await startUpstream('500', (_req, res) => {
    res.statusCode = 500;
    res.end('no');
  });
  t.teardown(() => up.close());
  const n = setup([`${up.url}/services/hook?token=s3cret#frag`]);
  n.notifier.send(event('promote'));
  await n.notifier.flush();
  t.equal(up.seen[0]!.url, '/services/hook?token=s3cret', 'the query string was sent');
  t.equal(await n.count('status'), 1);
  t.equal(await n.total(), 1);
  const lines = n.lines();
  t.equal(lines.length, 1, 'logged once');
  t.match(lines[0], { level: 40, url: `${up.url}/…`, reason: 'status', status: 500, action: 'promote' });
  t.notMatch(n.logged.join(''), /s3cret|frag|services\/hook/, 'no secret in the log');
});

t.test('a 3xx is not delivered either; a 204 is', async (t) => {
  const up = await startUpstream('codes', (req, res) => {
    res.statusCode = req.url === '/moved' ? 302 : 204;
    res.end();
  });
  t.teardown(() => up.close());
  const n = setup([`${up.url}/moved`, `${up.url}/ok`]);
  n.notifier.send(event('complete'));
  await n.notifier.flush();
  t.equal(up.seen.length, 2);
  t.equal(await n.count('status'), 1);
  t.match(n.lines(), [{ url: `${up.url}/…`, status: 302 }]);
});

t.test('a refused connection counts "error", logged without user, password or query', async (t) => {
  const port = await freePort();
  const n = setup([`http://user:pw@127.0.0.1:${port}/hook?key=s3cret`]);
  n.notifier.send(event('rollback'));
  await n.notifier.flush();
  t.equal(await n.count('error'), 1);
  t.equal(await n.total(), 1);
  const lines = n.lines();
  t.equal(lines.length, 1);
  t.match(lines[0], { level: 40, url: `http://127.0.0.1:${port}/…`, reason: 'error', error: /ECONNREFUSED/ });
  t.notMatch(n.logged.join(''), /s3cret|pw/);
});

t.test('send() returns while a receiver has not answered; the timeout then counts "error"', async (t) => {
  let returned = false;
  let flushed = false;
  const atArrival: { returned: boolean; flushed: boolean }[] = [];
  // Never answers; notes, if the POST arrives before the timeout, what the sender had done by then.
  const silent = await startUpstream('silent', () => atArrival.push({ returned, flushed }));
  t.teardown(() => silent.close());
  const n = setup([silent.url], { timeoutMs: 100 });
  n.notifier.send(event('promote'));
  returned = true;
  const flushing = n.notifier.flush().then(() => (flushed = true));
  t.notOk(flushed, 'send() returned with the POST still out');
  t.equal(await n.total(), 0, 'nor has it failed yet');
  await flushing;
  t.ok(atArrival.every((a) => a.returned && !a.flushed), 'the POST arrived, if at all, after send() returned and before it settled');
  t.equal(await n.count('error'), 1);
  t.match(n.lines(), [{ url: silent.url + '/…', reason: 'error', error: /timeout|abort/i }]);
});

t.test('an answer cut short after a 2xx still counts as delivered', async (t) => {
  const up = await startUpstream('cut', (_req, res) => {
    res.writeHead(200, { 'content-length': '10' });
    res.write('12345', () => res.destroy());
  });
  t.teardown(() => up.close());
  const n = setup([up.url]);
  n.notifier.send(event('hold'));
  await n.notifier.flush();
  t.equal(up.seen.length, 1);
  t.equal(await n.total(), 0);
  t.strictSame(n.logged, []);
});

t.test('past maxQueue waiting, the newest are dropped and counted "queue_full"', async (t) => {
  const hook = await heldReceiver(t);
  const n = setup([hook.up.url], { maxQueue: 3 });
  // The first goes at once; three wait behind it; two more find the queue full.
  for (let i = 0; i < 6; i++) n.notifier.send(event(`step-${i}`));
  t.equal(await n.count('queue_full'), 2);
  t.match(n.lines(), [
    { level: 40, url: hook.up.url + '/…', reason: 'queue_full', action: 'step-4' },
    { level: 40, url: hook.up.url + '/…', reason: 'queue_full', action: 'step-5' },
  ]);
  await until(() => hook.held.length === 1);
  hook.release();
  await n.notifier.flush();
  t.strictSame(bodies(hook.up).map((e) => e.action), ['step-0', 'step-1', 'step-2', 'step-3']);
  t.equal(await n.total(), 2, 'only the two dropped');

  // Drained: the queue takes events again.
  n.notifier.send(event('step-6'));
  await n.notifier.flush();
  t.equal(hook.up.seen.length, 5);
  t.equal(await n.total(), 2);
});

t.test('one URL full does not drop events for another', async (t) => {
  const hook = await heldReceiver(t);
  const other = await startUpstream('other');
  t.teardown(() => other.close());
  const n = setup([hook.up.url, other.url], { maxQueue: 1 });
  n.notifier.send(event('a'));
  n.notifier.send(event('b'));
  // The other receiver has answered 'a': its queue is empty while the held one's is full.
  await until(() => other.seen.length === 2);
  n.notifier.send(event('c'));
  t.equal(await n.count('queue_full'), 1);
  t.match(n.lines(), [{ url: hook.up.url + '/…', reason: 'queue_full', action: 'c' }]);
  await until(() => hook.held.length === 1);
  hook.release();
  await n.notifier.flush();
  t.strictSame(bodies(hook.up).map((e) => e.action), ['a', 'b']);
  t.strictSame(bodies(other).map((e) => e.action), ['a', 'b', 'c']);
});

t.test('flush() with nothing queued, and with no URLs, resolves; send() with no URLs does nothing', async (t) => {
  const n = setup([]);
  await n.notifier.flush();
  t.equal(n.notifier.send(event('promote')), undefined);
  await n.notifier.flush();
  t.equal(await n.total(), 0);
  t.strictSame(n.logged, []);
});

t.test('an event that cannot be serialized is counted "error" per URL; send() does not throw', async (t) => {
  const up = await startUpstream('hook');
  t.teardown(() => up.close());
  const n = setup([up.url, `${up.url}/second?k=s3cret`]);
  n.notifier.send(event('promote', { samples: 10n }));
  await n.notifier.flush();
  t.equal(up.seen.length, 0);
  t.equal(await n.count('error'), 2);
  t.match(n.lines(), [
    { url: up.url + '/…', reason: 'error', action: 'promote', error: /BigInt/ },
    { url: up.url + '/…', reason: 'error' },
  ]);
  t.notMatch(n.logged.join(''), /s3cret/);
});

t.test("each target in its own format: Slack blocks, a Teams card, PagerDuty only on incidents, the generic JSON as it is", async (t) => {
  const [json, slack, teams, pd] = await Promise.all(['json', 'slack', 'teams', 'pd'].map((name) => startUpstream(name)));
  t.teardown(() => Promise.all([json, slack, teams, pd].map((u) => u!.close())));
  const key = 'R0123456789abcdef0123456789abcde';
  const n = setup(
    [json!.url, { url: slack!.url, format: 'slack' }, { url: teams!.url, format: 'teams' }, { url: pd!.url, format: 'pagerduty', routingKey: key }],
    { context: { canary: 'fastapi', baseline: 'flask' } },
  );
  for (const a of ['start', 'promote', 'rollback', 'verification_failed', 'verified']) n.notifier.send(event(a));
  await n.notifier.flush();
  t.strictSame(bodies(json!).map((e) => e.action), ['start', 'promote', 'rollback', 'verification_failed', 'verified']);
  t.equal(slack!.seen.length, 5);
  for (const s of slack!.seen) t.same(schemaErrors('slack', JSON.parse(s.body.toString('utf8'))), []);
  t.equal(teams!.seen.length, 5);
  for (const s of teams!.seen) t.same(schemaErrors('teams', JSON.parse(s.body.toString('utf8'))), []);
  const paged = pd!.seen.map((s) => JSON.parse(s.body.toString('utf8')) as { event_action: string; dedup_key: string; routing_key: string });
  t.same(paged.map((p) => [p.event_action, p.dedup_key]), [
    ['resolve', 'drum-splitter/fastapi/rollout'],
    ['trigger', 'drum-splitter/fastapi/rollout'],
    ['trigger', 'drum-splitter/fastapi/baseline'],
    ['resolve', 'drum-splitter/fastapi/baseline'],
  ], 'promote pages nobody');
  for (const p of paged) t.same(schemaErrors('pagerduty', p), []);
  t.equal(await n.total(), 0);
});

t.test('an event a format cannot serialize fails that target only', async (t) => {
  const [json, pd] = await Promise.all([startUpstream('json'), startUpstream('pd')]);
  t.teardown(() => Promise.all([json.close(), pd.close()]));
  const n = setup([json.url, { url: pd.url, format: 'pagerduty', routingKey: 'R0123456789abcdef0123456789abcde' }]);
  // PagerDuty takes no promote: nothing to serialize there.
  n.notifier.send(event('promote', { samples: 10n }));
  await n.notifier.flush();
  t.equal(await n.count('error'), 1);
  t.equal(pd.seen.length, 0);
});

t.test('a URL that is not http(s) is refused at construction, without echoing it', async (t) => {
  t.throws(() => setup(['not a url?token=s3cret']), new InputError('not a URL', 'webhook 1'));
  t.throws(() => setup(['http://127.0.0.1/', 'ftp://u:s3cret@example.com/x?k=s3cret']), new InputError('ftp://example.com/… is not http or https', 'webhook 2'));
});

t.test('close(): what is still queued at the bound is dropped, counted "shutdown", said in one line', async (t) => {
  // Accepts and never answers; the POST timeout (5 s) is far beyond the bound.
  const silent = await startUpstream('silent', () => {});
  t.teardown(() => silent.close());
  const other = await startUpstream('other', () => {});
  t.teardown(() => other.close());
  const n = setup([silent.url, other.url]);
  for (let i = 0; i < 5; i++) n.notifier.send(event(`step-${i}`));
  await until(() => silent.seen.length === 1 && other.seen.length === 1);
  const started = performance.now();
  t.equal(await n.notifier.close(200), 10, 'five events for each of two URLs');
  const took = performance.now() - started;
  t.ok(took >= 190 && took < 1500, `closed at the bound, not the POST timeout (${Math.round(took)} ms)`);
  t.equal(await n.count('shutdown'), 10);
  t.equal(await n.total(), 10, 'the aborted POSTs are not counted again as errors');
  t.match(n.lines(), [{ level: 40, dropped: 10, boundMs: 200, msg: 'shutdown: 10 rollout webhooks still queued after 200 ms were dropped' }]);
  t.equal(n.lines().length, 1, 'one line');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(silent.seen.length + other.seen.length, 2, 'the waiting ones are never sent');
});

t.test('close(): with everything delivered in time, nothing is dropped or said, and it does not wait for the bound', async (t) => {
  const hook = await heldReceiver(t);
  const n = setup([hook.up.url]);
  n.notifier.send(event('a'));
  n.notifier.send(event('b'));
  await until(() => hook.held.length === 1);
  setTimeout(hook.release, 100);
  const started = performance.now();
  t.equal(await n.notifier.close(10_000), 0);
  t.ok(performance.now() - started < 2000, 'returned once delivered');
  t.strictSame(bodies(hook.up).map((e) => e.action), ['a', 'b']);
  t.equal(await n.total(), 0);
  t.strictSame(n.logged, []);
  t.equal(await setup([]).notifier.close(0), 0, 'no URLs: nothing to drop');
});
