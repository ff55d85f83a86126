/**
 * The console in a real browser: Debian's chromium driven by puppeteer-core (which downloads no
 * browser), against the whole app in-process with real upstreams and real traffic through the
 * proxy. Also the replay's HTML report, opened as a file. Skips without /usr/bin/chromium.
 * CONSOLE_SCREENSHOT=docs/console.png also writes the README's screenshot.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { startApp, type RunningApp } from '../src/app.js';
import { readConfigFile } from '../src/config/config.js';
import { startController } from '../src/fleet/app.js';
import { replayCommand } from '../src/replay/command.js';
import { behaving, freePort, send, silentLog, startUpstream, steadyTraffic, type UpstreamHandler } from './helpers/net.js';
import { healthy, prometheusAnswering } from './helpers/prometheus.js';
import { until } from './helpers/wait.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed (Debian package chromium)`;
const SCREENSHOT = process.env.CONSOLE_SCREENSHOT;

const TOKEN = 'console-browser-token-0123456789';
const WHO = 'ops';

let launched: Promise<Browser> | undefined;
/** One chromium for the file, started on first use. Root in CI and here: no sandbox. */
function browser(): Promise<Browser> {
  launched ??= puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  return launched;
}
t.teardown(async () => {
  if (launched !== undefined) await (await launched).close();
});

interface Watched {
  page: Page;
  /** Console errors and warnings, uncaught exceptions, CSP violations, failed requests. */
  problems: string[];
}

/**
 * A fresh page that records everything that went wrong on it. In its own browser context, closed
 * at the test's end with its sockets: an admin listener still holding a browser's connection
 * can take a minute and more to close.
 */
async function openPage(t: Test, viewport = { width: 1280, height: 900 }): Promise<Watched> {
  const context = await (await browser()).createBrowserContext();
  t.teardown(() => context.close());
  const page = await context.newPage();
  await page.setViewport(viewport);
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${(err as Error).message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  // Chromium also logs these, but an event says exactly which directive refused what.
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  return { page, problems };
}

/** A DRUM-like upstream: /ping, /stats/ with its RSS, predictions from `predict`. */
const drum = (rssMb: number, predict: UpstreamHandler): UpstreamHandler => (req, res, body) => {
  res.setHeader('content-type', 'application/json');
  if (req.url === '/ping') return res.end('{"message":"OK"}');
  if (req.url === '/stats/') return res.end(JSON.stringify({ mem_info: { drum_rss: rssMb } }));
  predict(req, res, body);
};

interface World {
  app: RunningApp;
  admin: string;
  /** Closes the app (once; the test's end closes it otherwise). */
  stop(): Promise<number>;
  /** The traffic listener's base URL. */
  traffic: string;
}

/**
 * The app with two upstreams, a named token, a recording file and a rollout plan, and four paced
 * clients sending predictions to DRUM's /predict/ with many query strings: the split key takes the
 * query too, so each weight sends its share to the canary, and the recording and shadow see them all.
 */
async function world(t: Test, opts: { canary?: UpstreamHandler; rollout?: Record<string, unknown>; weights?: string[]; seriesMs?: number; anonymous?: boolean; routes?: unknown[] } = {}): Promise<World> {
  const flask = await startUpstream('flask', drum(120, behaving(2)));
  const fastapi = await startUpstream('fastapi', drum(110, opts.canary ?? behaving(2)));
  // Its own short-named directory: the recording's path shows on the page (and the screenshot).
  const dir = mkdtempSync(join(tmpdir(), 'drum-console-'));
  writeFileSync(join(dir, 'tokens'), `${WHO}:${TOKEN}\n`);
  const path = join(dir, 'drum.yaml');
  writeFileSync(path, JSON.stringify({ upstreams: { flask: flask.url, fastapi: fastapi.url }, ...(opts.rollout === undefined ? {} : { rollout: opts.rollout }), ...(opts.routes === undefined ? {} : { routes: opts.routes }) }));
  const app = await startApp(
    {
      file: { path, settings: readConfigFile(path) },
      flags: {
        listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...(opts.anonymous === true ? {} : { adminTokenFile: join(dir, 'tokens') }), pollInterval: '300ms', key: '${remote_addr}${uri}${args}',
        record: join(dir, 'recorded.jsonl'), recordSample: '0.05', ...(opts.weights === undefined ? {} : { weights: opts.weights }),
      },
    },
    { env: {}, log: silentLog, seriesIntervalMs: opts.seriesMs ?? 250 },
  );
  const target = `http://127.0.0.1:${app.proxy.address.port}`;
  // Paced, so chromium and the tests beside this one keep their CPU.
  const traffic = steadyTraffic((i) => `${target}/predict/?client=${i % 500}`, { headers: { 'content-type': 'text/csv' } });
  let closed: Promise<number> | undefined;
  const stop = () => (closed ??= app.close());
  t.teardown(async () => {
    await traffic.stop();
    await stop();
    await Promise.all([flask.close(), fastapi.close()]);
    rmSync(dir, { recursive: true, force: true });
  });
  return { app, admin: `http://127.0.0.1:${app.adminAddress.port}`, traffic: target, stop };
}

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await request(url);
  return (await res.body.json()) as Record<string, unknown>;
}

/** The text of one backend's measure, e.g. cell(page, 'fastapi', 'rps'). */
const cell = (page: Page, upstream: string, measure: string): Promise<string> =>
  page.$eval(`#backend-table td[data-upstream="${upstream}"][data-measure="${measure}"]`, (e) => e.textContent ?? '');

const barText = (page: Page, upstream: string): Promise<string> => page.$eval(`#bars .bar[data-upstream="${upstream}"] .pct`, (e) => e.textContent ?? '');

/** Both backends' rate, latency and memory filled in from GET /series, as traffic flows. */
async function waitForNumbers(page: Page): Promise<void> {
  await page.waitForFunction(
    () => ['flask', 'fastapi'].every((u) => {
      const measure = (m: string): string => document.querySelector(`#backend-table td[data-upstream="${u}"][data-measure="${m}"]`)?.textContent ?? '';
      return Number(measure('rps')) > 0 && /MB$/.test(measure('rss')) && measure('ping') === 'answers';
    }),
    { timeout: 15_000 },
  );
}

/** Waits for an element's text to match; on timeout, says what it shows instead. */
async function waitForText(page: Page, selector: string, pattern: RegExp, timeout = 5000): Promise<string> {
  try {
    await page.waitForFunction((sel, source, flags) => new RegExp(source, flags).test(document.querySelector(sel)?.textContent ?? ''), { timeout }, selector, pattern.source, pattern.flags);
  } catch {
    const shown = await page.$eval(selector, (e) => e.textContent).catch(() => null);
    throw new Error(`${selector} did not match ${pattern} within ${timeout} ms; it shows ${JSON.stringify(shown)}`);
  }
  return page.$eval(selector, (e) => e.textContent ?? '');
}

/** A table's body, a row per line, each cell's text. */
const rows = (page: Page, table: string): Promise<string[][]> =>
  page.$$eval(`${table} tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));

/** Waits for the confirmation dialog and confirms it. */
async function confirm(page: Page): Promise<void> {
  await page.waitForSelector('dialog#confirm[open]');
  await page.click('#confirm-ok');
}

/** Whether every control that needs the token is disabled. */
const controlsDisabled = (page: Page): Promise<boolean[]> =>
  page.$$eval('fieldset.needs-token button, fieldset.needs-token input, fieldset.needs-token select', (all) => all.map((e) => e.matches(':disabled')));

t.test('the console: live numbers, read-only without a token, the weight changed through its dialog with one', { skip }, async (t) => {
  const w = await world(t, { weights: ['fastapi=10'] });
  const { page, problems } = await openPage(t);
  const res = await page.goto(`${w.admin}/`);
  t.equal(res?.status(), 200);
  t.match(res?.headers()['content-security-policy'], /default-src 'none'; script-src 'self'/);

  await waitForNumbers(page);
  t.equal(await barText(page, 'flask'), '90%');
  t.equal(await barText(page, 'fastapi'), '10%');
  t.equal(await page.$eval('#split-by', (e) => e.textContent), 'by ${remote_addr}${uri}${args}, hash murmur2', 'the split names its key and hash');
  for (const u of ['flask', 'fastapi']) {
    t.match(await cell(page, u, 'p50'), /^\d+(\.\d+)? ms$/, `${u} p50`);
    t.match(await cell(page, u, 'p99'), /^\d+(\.\d+)? ms$/, `${u} p99`);
    t.match(await cell(page, u, 'errors'), /^\d+(\.\d+)?%$/, `${u} error rate`);
    t.equal(await cell(page, u, 'ping'), 'answers', `${u} answers /ping`);
  }
  t.equal(await cell(page, 'flask', 'rss'), '120 MB');
  t.equal(await cell(page, 'fastapi', 'rss'), '110 MB');
  t.equal(await page.$$eval('.chart canvas', (c) => c.filter((e) => e.clientWidth > 0).length), 4, 'four charts drawn');
  // The same two colours in the bars, the charts' legends and the table.
  const colours = await page.evaluate(() => ({
    bar: getComputedStyle(document.querySelector('#bars [data-upstream="fastapi"] .fill')!).backgroundColor,
    heads: [...document.querySelectorAll('#backend-table thead th')].map((th) => [th.firstChild?.textContent, getComputedStyle(th).color]),
    legend: [...document.querySelectorAll('#chart-rps .u-series .u-marker')].map((m) => getComputedStyle(m).borderColor),
  }));
  t.equal(colours.bar, 'rgb(230, 85, 13)', 'the canary is orange');
  t.same(colours.heads, [['flask', 'rgb(31, 111, 180)'], ['fastapi', 'rgb(230, 85, 13)']], 'the table: a column per backend, headed in its colour');
  t.same(colours.legend.slice(-2), ['rgb(31, 111, 180)', 'rgb(230, 85, 13)'], 'baseline blue, canary orange in the chart');
  // The canary at 10% from the flags, and no rollout state: nobody's.
  t.equal(await page.$eval('#rollout-phase', (e) => e.textContent), 'unmanaged', 'the seed plan was never started, yet the canary takes traffic');
  t.equal(await page.$eval('#rollout-weight', (e) => e.textContent), 'fastapi at 10% (baseline flask)');
  t.match(await page.$eval('#rollout-note', (e) => e.textContent), /no rollout watches it/);
  t.equal(await page.$eval('#rollout-phase .phase', (e) => getComputedStyle(e).color), 'rgb(154, 103, 0)', 'in the warning colour');

  // Without a token: every control disabled, and the page says why.
  t.ok((await controlsDisabled(page)).every(Boolean), 'controls disabled');
  t.ok(await page.$eval('#read-only', (e) => !(e as HTMLElement).hidden && (e as HTMLElement).offsetHeight > 0), 'the read-only hint shows');

  // With it, typed and submitted from the keyboard.
  await page.focus('#token');
  await page.keyboard.type(TOKEN);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => !(document.querySelector('#weight-form fieldset') as HTMLFieldSetElement).disabled);
  t.ok((await controlsDisabled(page)).every((d) => !d), 'controls enabled');
  t.equal(await page.evaluate(() => sessionStorage.getItem('drum-splitter.token')), TOKEN, 'kept in sessionStorage');
  t.equal(await page.evaluate(() => document.cookie), '', 'no cookie');
  t.notMatch(page.url(), TOKEN, 'not in the URL');
  t.equal(await page.$eval('#token', (e) => (e as HTMLInputElement).value), '', 'the field is cleared');

  // The weight: typed, then confirmed in the dialog, which names the change.
  await page.click('#weight-value', { count: 3 });
  await page.keyboard.type('20');
  await page.type('#weight-reason', 'console e2e');
  await page.keyboard.press('Enter');
  await page.waitForSelector('dialog#confirm[open]');
  t.match(await page.$eval('#confirm-text', (e) => e.textContent), 'fastapi 10% → 20%; flask takes the rest: 90% → 80%');
  t.equal(await page.evaluate(() => document.activeElement?.id), 'confirm-ok', 'focus on the confirm button');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('#bars [data-upstream="fastapi"] .pct')?.textContent === '20%', { timeout: 5000 });
  t.match(await page.$eval('#weight-result', (e) => e.textContent), 'Done: fastapi is at 20%');
  t.equal(await barText(page, 'flask'), '80%');
  const history = (await getJson(`${w.admin}/history`)).history as { who: string; reason: string | null; to: Record<string, number>; source: string }[];
  t.match(history.at(-1), { who: WHO, reason: 'console e2e', source: 'admin', to: { flask: 80, fastapi: 20 } }, 'the audit trail names the token and the reason');
  t.equal(await page.evaluate(() => document.activeElement?.closest('form')?.id), 'weight-form', 'focus back in the form');
  t.equal(await page.$eval('#weight-reason', (e) => (e as HTMLInputElement).value), '', 'the reason cleared: the next change says its own');

  // Roll back: Escape cancels, and nothing changes.
  await page.click('#rollback');
  await page.waitForSelector('dialog#confirm[open]');
  await page.keyboard.press('Escape');
  await page.waitForSelector('dialog#confirm:not([open])');
  t.equal(await page.evaluate(() => document.activeElement?.id), 'rollback', 'focus back on the button');
  t.equal(w.app.store.view().weights.fastapi, 20, 'a cancelled rollback changes nothing');

  // The shadow and the recording switched from their forms.
  await page.click('#shadow-enabled');
  await page.click('#shadow-rate', { count: 3 });
  await page.keyboard.type('50');
  await page.click('#shadow-form button[type="submit"]');
  await waitForText(page, '#shadow-result', /shadow on at 50%/);
  t.match(await getJson(`${w.admin}/shadow`), { enabled: true, sampleRate: 0.5 });
  await waitForText(page, '#shadow-state', /match rate \d/, 10_000);
  t.match(await page.$eval('#recording-state', (e) => e.textContent), /^On: 5% of the requests on 6 paths, to .*recorded\.jsonl\.$/);
  t.equal(await page.$eval('#recording-rate', (e) => (e as HTMLInputElement).value), '5', 'the form shows the rate in percent');
  await page.click('#recording-enabled');
  await page.click('#recording-form button[type="submit"]');
  await waitForText(page, '#recording-result', /recording off at 5%/);
  t.match(await getJson(`${w.admin}/recording`), { enabled: false, sampleRate: 0.05 });
  await waitForText(page, '#recording-state', /^Off \(file /);

  // The API's own error message, field and all.
  await page.click('#recording-rate', { count: 3 });
  await page.keyboard.type('200');
  // The input's max stops the form first; the API's check is the one that counts, so bypass it.
  await page.$eval('#recording-form', (f) => ((f as HTMLFormElement).noValidate = true));
  await page.click('#recording-form button[type="submit"]');
  await waitForText(page, '#recording-result', /^400: sampleRate: must be a number from 0 to 1/);

  // A wrong token: the write is refused and the page says so.
  await page.click('#forget-token');
  t.equal(await page.evaluate(() => sessionStorage.getItem('drum-splitter.token')), null, 'forgotten');
  t.ok((await controlsDisabled(page)).every(Boolean), 'read-only again');
  await page.type('#token', 'not-the-token-but-long-enough');
  await page.keyboard.press('Enter');
  await page.click('#weight-value', { count: 3 });
  await page.keyboard.type('30');
  await page.type('#weight-reason', 'to 30 for the load test');
  await page.click('#weight-form button[type="submit"]');
  await page.waitForSelector('dialog#confirm[open]');
  await page.click('#confirm-ok');
  await waitForText(page, '#weight-result', /token was refused \(401\)/);
  t.equal(w.app.store.view().weights.fastapi, 20, 'nothing changed');
  t.equal(await page.$eval('#weight-reason', (e) => (e as HTMLInputElement).value), 'to 30 for the load test', 'the reason kept, to send again with the right token');

  // Chromium logs a fetch's 4xx as a console error: only the two this test asked for.
  t.same(problems, [
    'console error: Failed to load resource: the server responded with a status of 400 (Bad Request)',
    'console error: Failed to load resource: the server responded with a status of 401 (Unauthorized)',
  ], 'no other console errors, no CSP violations');

  // The latencies say over what: the last interval here, the rollout's window in its verdict.
  t.same(await page.$$eval('#backend-table tbody th', (ths) => ths.map((th) => th.textContent)), ['/ping', 'req/s', 'errors', 'p50 (last 250 ms)', 'p99 (last 250 ms)', 'DRUM RSS']);

  // The proxy stops: the page says since when nothing answers, and shows no /ping answer from before.
  await w.stop();
  await waitForText(page, '#updated', /^the server does not answer, since \d\d:\d\d:\d\d \([\d.]+ (ms|s)\); what is shown is from \d\d:\d\d:\d\d$/, 10_000);
  t.same(await page.$$eval('#backend-table td[data-measure="ping"]', (tds) => tds.map((td) => [td.textContent, td.className])), [['unknown', ''], ['unknown', '']], 'no green "answers" from old data');
  t.ok(await page.$eval('body', (b) => b.classList.contains('stale')), 'the page greyed');
  await waitForText(page, '#updated', /^the server does not answer, since \d\d:\d\d:\d\d \([2-9][\d.]* s\)/, 10_000);
});

/**
 * A page on another loopback origin that tries every way a browser has to POST to the admin API
 * on its own: the issue's no-cors fetch and beacon, a text/plain body, a beacon with a JSON
 * Blob, and a CORS fetch with the JSON type (which needs a preflight). Resolves in `window.tried`
 * to what each fetch saw.
 */
const FORGER = (admin: string): string => `<!doctype html><title>elsewhere</title><script>
const admin = ${JSON.stringify(admin)};
const seen = (p) => p.then((r) => 'answered ' + r.type, (e) => 'failed: ' + e.message);
window.tried = Promise.all([
  seen(fetch(admin + '/rollback', { method: 'POST', mode: 'no-cors' })),
  seen(fetch(admin + '/rollout/start', { method: 'POST', mode: 'no-cors', body: '{"reason":"forged"}' })),
  seen(fetch(admin + '/rollback', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })),
  navigator.sendBeacon(admin + '/rollout/start'),
  (() => { try { return navigator.sendBeacon(admin + '/rollback', new Blob(['{}'], { type: 'application/json' })); } catch (e) { return 'threw: ' + e.message; } })(),
]);
</script>`;

t.test('without a token: a page on another loopback origin cannot write (no-cors fetch, beacon); the console still can', { skip }, async (t) => {
  const w = await world(t, { anonymous: true, weights: ['fastapi=10'], rollout: { interval: '1h', window: '1h', steps: [{ weight: 50, hold: '1h' }] } });
  const elsewhere = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(FORGER(w.admin)));
  await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => elsewhere.close(() => r())));
  const { page } = await openPage(t);
  // What reached the admin API, from the browser's own network log (a beacon has no promise to wait on).
  const reached: string[] = [];
  page.on('response', (r) => {
    if (r.url().startsWith(w.admin)) reached.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
  });
  await page.goto(`http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/`);
  const tried = await page.evaluate(() => (window as unknown as { tried: Promise<unknown[]> }).tried);
  t.same(tried, ['answered opaque', 'answered opaque', 'failed: Failed to fetch', true, true], 'the page sent them all');
  // The no-cors fetches and the beacon: sent, refused for their Origin. The JSON ones: preflighted (OPTIONS, no route), never sent.
  const forged = ['POST /rollback 403', 'POST /rollout/start 403', 'POST /rollout/start 403', 'OPTIONS /rollback 404', 'OPTIONS /rollback 404'];
  await until(() => reached.length >= forged.length);
  t.same(reached.sort(), forged.sort(), 'what reached the admin API, and its answers');
  t.same(w.app.store.view().weights, { flask: 90, fastapi: 10 }, 'the weights unchanged');
  t.equal(w.app.store.history.length, 1, 'no history entry');
  // A canary at 10% with no rollout started: unmanaged, as before the forged requests.
  t.equal(w.app.rollout!.state.phase, 'unmanaged', 'no rollout started');

  // The console, on the admin's own origin: any word as the token, and its writes are taken.
  const { page: console_, problems } = await openPage(t);
  await console_.evaluateOnNewDocument(() => sessionStorage.setItem('drum-splitter.token', 'anything'));
  await console_.goto(`${w.admin}/`);
  await console_.waitForFunction(() => document.querySelector('#rollout-phase')?.textContent === 'unmanaged');
  await console_.click('#rollback');
  await console_.waitForSelector('dialog#confirm[open]');
  await console_.click('#confirm-ok');
  await waitForText(console_, '#weight-result', /^Rolled back: flask 100%, fastapi 0%/);
  await console_.type('#rollout-reason', 'from the console');
  await console_.click('#rollout-form button[data-command="start"]');
  await confirm(console_);
  await waitForText(console_, '#rollout-result', /^start: now running, canary at 50%/);
  t.same(w.app.store.history.slice(1).map((h) => [h.who, h.reason]), [['anonymous', 'rollback'], ['rollout (anonymous)', 'rollout started → canary to 50%']]);
  t.same(problems, []);
});

interface Drawn {
  text: string;
  x: number;
  width: number;
  align: string;
}

/**
 * Records what is drawn as text on each chart's canvas, the last frame only (uPlot clears the
 * canvas before each): the axes' labels are no DOM. In window.chartText, by the chart's id.
 */
function recordChartText(): void {
  const frames: Record<string, Drawn[]> = {};
  (window as unknown as { chartText: typeof frames }).chartText = frames;
  const proto = CanvasRenderingContext2D.prototype;
  const { clearRect, fillText } = proto;
  const chartOf = (ctx: CanvasRenderingContext2D): string | undefined => (ctx.canvas as HTMLCanvasElement).closest('.chart')?.id;
  proto.clearRect = function (this: CanvasRenderingContext2D, ...args: Parameters<typeof clearRect>) {
    const id = chartOf(this);
    if (id !== undefined) frames[id] = [];
    return clearRect.apply(this, args);
  };
  proto.fillText = function (this: CanvasRenderingContext2D, ...args: Parameters<typeof fillText>) {
    const id = chartOf(this);
    if (id !== undefined) frames[id]?.push({ text: args[0], x: args[1], width: this.measureText(args[0]).width, align: this.textAlign });
    return fillText.apply(this, args);
  };
}

/** Each chart's time axis as last drawn: its labels (centred under their ticks), left to right. */
const timeLabels = (page: Page): Promise<Record<string, Drawn[]>> =>
  page.evaluate(() => {
    const frames = (window as unknown as { chartText: Record<string, Drawn[]> }).chartText;
    return Object.fromEntries(Object.entries(frames).map(([id, drawn]) => [id, drawn.filter((d) => d.align === 'center').sort((a, b) => a.x - b.x)]));
  });

/** Labels that overlap, or come within 4 px of, the next on the axis. */
const crowded = (labels: Drawn[]): string[] =>
  labels.slice(1).flatMap((b, i) => {
    const a = labels[i]!;
    return a.x + a.width / 2 + 4 > b.x - b.width / 2 ? [`${a.text}|${b.text}`] : [];
  });

t.test("on a 375 px phone: no horizontal scroll; the charts follow the page's width; one point or an hour, their time axis reads", { skip }, async (t) => {
  const w = await world(t, { weights: ['fastapi=10'] });
  const { page, problems } = await openPage(t, { width: 375, height: 812 });
  await page.evaluateOnNewDocument(recordChartText);
  // GET /series as a page opened at start-up sees it (one point), then after an hour: the app's
  // own samples, the last alone or spread over the hour.
  let series: 'one point' | 'an hour' = 'one point';
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    void (async () => {
      if (new URL(req.url()).pathname !== '/series') return req.continue();
      const real = (await getJson(`${w.admin}/series`)) as { samples: { at: string }[] };
      const n = real.samples.length;
      const samples = series === 'one point' ? real.samples.slice(-1) : real.samples.map((p, i) => ({ ...p, at: new Date(Date.now() - ((n - 1 - i) * 3_600_000) / n).toISOString() }));
      return req.respond({ status: 200, contentType: 'application/json', body: JSON.stringify({ ...real, samples }) });
    })();
  });
  await page.goto(`${w.admin}/`);
  await waitForNumbers(page);
  const readable = async (when: string, pattern: RegExp): Promise<void> => {
    // The next frames, not those drawn before.
    await page.evaluate(() => {
      const frames = (window as unknown as { chartText: Record<string, unknown> }).chartText;
      for (const id of Object.keys(frames)) delete frames[id];
    });
    await page.waitForFunction((source) => {
      const frames = (window as unknown as { chartText: Record<string, { text: string; align: string }[]> }).chartText;
      const labels = ['chart-rps', 'chart-errors', 'chart-latency', 'chart-rss'].map((id) => (frames[id] ?? []).filter((d) => d.align === 'center'));
      return labels.every((l) => l.length > 0 && l.every((d) => new RegExp(source).test(d.text)));
    }, { timeout: 10_000 }, pattern.source).catch(() => undefined);
    const axes = await timeLabels(page);
    t.same(Object.keys(axes).sort(), ['chart-errors', 'chart-latency', 'chart-rps', 'chart-rss'], `${when}: four time axes`);
    for (const [id, labels] of Object.entries(axes)) {
      t.ok(labels.length > 0 && labels.every((l) => pattern.test(l.text)), `${when}, ${id}: times of day, ${labels.map((l) => l.text).join(' ')}`);
      t.same(crowded(labels), [], `${when}, ${id}: no label runs into the next`);
    }
  };
  await readable('one point', /^\d\d:\d\d:\d\d$/);
  series = 'an hour';
  await readable('an hour', /^\d\d:\d\d$/);
  const sizes = await page.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    charts: [...document.querySelectorAll('.chart canvas')].map((c) => c.getBoundingClientRect().right),
  }));
  t.equal(sizes.viewport, 375);
  t.ok(sizes.page <= sizes.viewport, `page ${sizes.page} px wide`);
  t.ok(sizes.charts.length === 4 && sizes.charts.every((r) => r <= 375), `charts end at ${sizes.charts.join(', ')} px`);
  // On a laptop, four across: each chart follows its box's new width (ResizeObserver).
  await page.setViewport({ width: 1280, height: 900 });
  await page.waitForFunction(
    () => [...document.querySelectorAll('.chart')].every((box) => {
      const canvas = box.querySelector('canvas')!.getBoundingClientRect();
      return Math.abs(canvas.width - box.clientWidth) < 2 && canvas.width < 330 && canvas.top === document.querySelector('.chart canvas')!.getBoundingClientRect().top;
    }),
    { timeout: 5000 },
  );
  await readable('an hour, on a laptop', /^\d\d:\d\d$/);
  t.same(problems, []);
});

t.test('the Cohorts panel: each rule in order, what it matches, where it sends, its count; a change through the API shows', { skip }, async (t) => {
  const w = await world(t, {
    routes: [
      { name: 'beta', match: { header: { 'x-beta': '1' }, path: '/predict/' }, upstream: 'fastapi' },
      { name: 'qa', match: { cookie: { qa: { regex: '^run-' } }, method: 'POST' }, split: true },
    ],
  });
  for (let i = 0; i < 3; i++) await send(`${w.traffic}/predict/`, { headers: { 'x-beta': '1' } });
  const { page, problems } = await openPage(t);
  await page.goto(`${w.admin}/`);
  await waitForText(page, '#cohort-table tr[data-route="beta"] td[data-measure="matches"]', /^3$/, 10_000);
  t.match(await page.$eval('#cohorts-state', (e) => e.textContent), /^2 rules, version 1 \(startup, /);
  const rows = await page.$$eval('#cohort-table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  t.same(rows, [
    ['beta', 'header x-beta = "1", and path starts "/predict/"', 'fastapi', '3'],
    ['qa', 'cookie qa ~ /^run-/, and method = "POST"', 'the split', '0'],
  ]);
  t.equal(await page.$eval('#cohort-table tr[data-route="beta"] td:nth-child(3) span', (e) => getComputedStyle(e).color), 'rgb(230, 85, 13)', 'the canary in its colour');
  const put = await request(`${w.admin}/routes`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ routes: [] }) });
  t.equal(put.statusCode, 200, await put.body.text());
  await waitForText(page, '#cohorts-state', /^No rules: every request goes through the split\.$/);
  t.same(await page.$$eval('#cohort-table tbody tr', (trs) => trs.map((tr) => tr.textContent)), ['no rules'], 'an empty table says so');
  t.same(problems, []);
});

t.test('one upstream: no rollout to show, no split to change, nothing logged', { skip }, async (t) => {
  const flask = await startUpstream('flask', drum(120, behaving(2)));
  const app = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`] } }, { env: {}, log: silentLog, seriesIntervalMs: 250 });
  t.teardown(async () => {
    await app.close();
    await flask.close();
  });
  const { page, problems } = await openPage(t);
  await page.goto(`http://127.0.0.1:${app.adminAddress.port}/`);
  await waitForText(page, '#updated', /^live, updated/);
  // Two rounds of reads, so a 404 would have been logged.
  await new Promise((r) => setTimeout(r, 2500));
  t.ok(await page.$eval('#rollout-none', (e) => !(e as HTMLElement).hidden), 'says there is no rollout');
  t.ok(await page.$eval('#judged', (e) => (e as HTMLElement).hidden), 'no checks or decisions');
  t.ok(await page.$eval('#weight-form', (e) => (e as HTMLElement).hidden), 'no weight to set');
  t.equal(await barText(page, 'flask'), '100%');
  t.same(problems, []);
});

t.test("a failing canary's rollback shows in the decision log within seconds", { skip }, async (t) => {
  const w = await world(t, {
    canary: behaving(2, 5),
    rollout: { interval: '150ms', window: '1s', minRequests: 20, steps: [{ weight: 50, hold: '1h' }], rollback: { maxErrorRate: 0.01 } },
  });
  const { page, problems } = await openPage(t);
  await page.evaluateOnNewDocument((token) => sessionStorage.setItem('drum-splitter.token', token), TOKEN);
  await page.goto(`${w.admin}/`);
  await page.waitForFunction(() => document.querySelector('#rollout-phase')?.textContent === 'idle');
  await page.type('#rollout-reason', 'try fastapi');
  await page.click('#rollout-form button[data-command="start"]');
  await confirm(page);
  const started = Date.now();
  await page.waitForFunction(() => document.querySelector('#decisions tbody tr[data-action="rollback"]') !== null, { timeout: 10_000 });
  t.ok(Date.now() - started < 10_000, `in the log ${Date.now() - started} ms after the start`);
  // The baseline's verification follows the rollback: its decision on top, each item a line under its text.
  await page.waitForFunction(() => /^verifi/.test(document.querySelector('#decisions tbody tr')?.getAttribute('data-action') ?? ''), { timeout: 10_000 });
  const rows = await page.$$eval('#decisions tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
  t.match(rows[1], [/\d\d:\d\d:\d\d/, 'rollback', '50% → 0%', 'rollout', '', /canary error rate [\d.]+% \(\d+ of \d+\) over 1%/], 'newest first, with its numbers');
  const items = await page.$$eval('#decisions tbody tr:first-child li', (lis) => lis.map((li) => [li.className, li.textContent]));
  // The test's baseline answers /ping, /health/ and /stats/ as DRUM does, but its /info/ names no DRUM server.
  t.match(items.slice(0, 3), [['s-ok', '✔ ping: GET /ping → 200'], ['s-ok', '✔ health: GET /health/ → 200'], ['s-fail', /^✘ info: GET \/info\/: no DRUM server named/]]);
  t.match(items.at(-1), ['s-ok', /^✔ stats: GET \/stats\/: drum_rss 120 MiB$/]);
  t.equal(items.length, 6);
  t.match(rows.at(-1), [/./, 'start', '0% → 50%', WHO, 'try fastapi'], 'the start, by the token, with the reason');
  await page.waitForFunction(() => document.querySelector('#rollout-phase')?.textContent === 'rolled back' && document.querySelector('#bars [data-upstream="fastapi"] .pct')?.textContent === '0%');
  t.match(await page.$eval('#verdict', (e) => e.textContent), /^rollback at .*canary error rate/);
  t.match(await page.$$eval('#checks tbody tr', (trs) => trs.map((tr) => tr.querySelector('td')?.textContent)), ['error_rate']);
  t.same(problems, []);
});

t.test('a healthy canary mid-plan: its step highlighted, the verdict with its checks, the next check due', { skip }, async (t) => {
  // Longer for the screenshot, so the charts have a line to show.
  const w = await world(t, {
    seriesMs: SCREENSHOT === undefined ? 250 : 1000,
    rollout: {
      interval: '500ms', window: '3s', minRequests: 20,
      steps: [{ weight: 5, hold: '2s' }, { weight: 25, hold: '3s' }, { weight: 50, hold: '1h' }, { weight: 100, hold: '1h', approve: true }],
    },
  });
  w.app.rollout!.command('start', WHO, 'canary for fastapi');
  const { page, problems } = await openPage(t);
  await page.evaluateOnNewDocument((token) => sessionStorage.setItem('drum-splitter.token', token), TOKEN);
  await page.goto(`${w.admin}/`);
  await until(() => w.app.rollout!.state.step === 2, 20_000);
  await page.waitForFunction(() => document.querySelector('#plan li.current')?.textContent === '50% 1h', { timeout: 5000 });
  t.same(await page.$$eval('#plan li', (lis) => lis.map((li) => [li.textContent, li.className, li.getAttribute('aria-current')])), [
    ['5% 2s', 'done', null],
    ['25% 3s', 'done', null],
    ['50% 1h', 'current', 'step'],
    ['100% 1h (approve)', '', null],
  ]);
  t.equal(await page.$eval('#rollout-phase', (e) => e.textContent), 'running');
  t.match(await page.$eval('#rollout-step', (e) => e.textContent), /^3 of 4: 50%, held/);
  t.match(await page.$eval('#rollout-next', (e) => e.textContent), /^check (in [\d.]+ (ms|s)|now) \(\d\d:\d\d:\d\d\)/);
  await waitForText(page, '#verdict', /^pass at/, 10_000);
  const checks = await page.$$eval('#checks tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 2).map((td) => td.textContent)));
  t.ok(checks.some(([name, status]) => name === 'error_rate' && status === 'ok'), `the checks with their status: ${JSON.stringify(checks)}`);
  t.same((await page.$$eval('#decisions tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-action')))), ['promote', 'promote', 'start'], 'newest first');
  if (SCREENSHOT !== undefined) {
    // A minute of traffic on the charts, and the shadow comparing.
    await request(`${w.admin}/shadow`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ enabled: true, sampleRate: 0.2 }) });
    await new Promise((r) => setTimeout(r, 60_000));
    await waitForText(page, '#verdict', /^pass at/, 10_000);
    await page.screenshot({ path: resolve(SCREENSHOT), fullPage: true });
    t.pass(`screenshot in ${SCREENSHOT}`);
  }
  t.same(problems, []);
});

t.test('answers the console cannot draw: it draws the rest and names what it could not', { skip }, async (t) => {
  const w = await world(t, { rollout: { interval: '1s', window: '3s', minRequests: 20, steps: [{ weight: 5, hold: '1h' }] } });
  w.app.rollout!.command('start', WHO, 'canary for fastapi');
  const { page, problems } = await openPage(t);
  // The API checks what it serves; these stand for a server that did not (an older one, a proxy in
  // between): the page's reads answered so, everything else from the app.
  let answer: 'decisions' | 'no list' | 'rollout' | 'real' = 'decisions';
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    void (async () => {
      const path = new URL(req.url()).pathname;
      if (answer === 'real' || !(path === '/rollout/decisions' || (answer === 'rollout' && path === '/rollout'))) return req.continue();
      const real = await getJson(`${w.admin}${path}`);
      const body = answer === 'rollout' ? { ...real, phase: 7 } : { decisions: answer === 'no list' ? {} : [null, 5, 'x', { action: 7 }, ...(real.decisions as unknown[])] };
      return req.respond({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
    })();
  });
  await page.goto(`${w.admin}/`);
  const said = await waitForText(page, '#updated', /^not all read: /);
  t.equal(said, 'not all read: /rollout/decisions: 4 of 5 not drawn (entry 3: its action is not text; entry 2: not a decision: "x"; entry 1: not a decision: 5; and 1 more)');
  t.same(await page.$$eval('#decisions tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-action'))), ['start'], 'the decision that is one, drawn');
  t.equal(await page.$eval('#rollout-phase', (e) => e.textContent), 'running', 'the rest of the rollout drawn');
  t.equal(await barText(page, 'fastapi'), '5%', 'and the rest of the page');

  answer = 'no list';
  await waitForText(page, '#updated', /^not all read: \/rollout\/decisions: not drawn \(not a list: \{\}\)$/);
  t.equal(await page.$eval('#decisions tbody', (e) => e.children.length), 0);

  answer = 'rollout';
  await waitForText(page, '#updated', /^not all read: \/rollout: not drawn \(.*\)$/);
  t.equal(await barText(page, 'fastapi'), '5%', 'the weights still drawn');

  answer = 'real';
  await waitForText(page, '#updated', /^live, updated/);
  t.same(problems, [], 'nothing thrown, nothing logged');
});

t.test("the replay's HTML report draws its plot", { skip }, async (t) => {
  const dir = t.testdir({});
  // Both alike (the replay passes), each request slower than the last: curves that rise across the plot.
  const answer: UpstreamHandler = (req, res) => {
    res.setHeader('content-type', 'application/json');
    setTimeout(() => res.end(JSON.stringify({ path: req.url })), 2 * (Number(req.url!.slice(2)) || 0)); // /stats/ too: at once
  };
  const b = await startUpstream('flask', answer);
  const c = await startUpstream('fastapi', answer);
  t.teardown(() => Promise.all([b.close(), c.close()]));
  const rec = join(dir, 'rec.jsonl');
  writeFileSync(rec, Array.from({ length: 20 }, (_, i) => `${JSON.stringify({ method: 'GET', path: `/r${i}`, headers: {}, body_hex: '' })}\n`).join(''));
  const html = join(dir, 'report.html');
  // Five times each: 100 latencies a side, enough for the p99 to be judged (fewer is inconclusive).
  const code = await replayCommand({ baseline: b.url, canary: c.url, output: join(dir, 'report.json'), html, repeat: '5' }, [rec], { stderr: () => undefined, stdout: () => undefined, stderrIsTTY: false });
  t.equal(code, 0);

  const { page, problems } = await openPage(t);
  await page.goto(pathToFileURL(html).href);
  const plot = await page.$eval('svg[role="img"]', (svg) => {
    const box = svg.getBoundingClientRect();
    const curves = [...svg.querySelectorAll('path')].map((p) => ({ stroke: p.getAttribute('stroke'), length: p.getTotalLength(), box: { width: p.getBoundingClientRect().width, height: p.getBoundingClientRect().height } }));
    return { width: box.width, height: box.height, curves, labels: [...svg.querySelectorAll('text')].map((e) => e.textContent) };
  });
  t.ok(plot.width > 600 && plot.height > 250, `the plot is ${plot.width}×${plot.height}`);
  t.same(plot.curves.map((c) => c.stroke), ['#1f6fb4', '#e6550d'], 'baseline and canary curves');
  t.ok(plot.curves.every((c) => c.length > 100 && c.box.width > 50 && c.box.height > 100), `both curves drawn across the plot: ${JSON.stringify(plot.curves)}`);
  t.equal(plot.labels.filter((l) => /^p99 [\d.]+ ms$/.test(l ?? '')).length, 2, 'p99 marks labelled in the legend, a side each');
  t.match(await page.$eval('h1', (e) => e.textContent), /^Replay report: PASS$/);
  t.same(problems, []);
});

t.test('Start asks first when it would lower the canary: one set by hand, or at 100% after a complete rollout', { skip }, async (t) => {
  const w = await world(t, { weights: ['fastapi=10'], rollout: { interval: '1h', window: '1h', steps: [{ weight: 5, hold: '1h' }, { weight: 50, hold: '1h' }] } });
  const { page, problems } = await openPage(t);
  await page.evaluateOnNewDocument((token) => sessionStorage.setItem('drum-splitter.token', token), TOKEN);
  await page.goto(`${w.admin}/`);
  await page.waitForFunction(() => document.querySelector('#rollout-phase')?.textContent === 'unmanaged');
  await page.click('#rollout-form button[data-command="start"]');
  await page.waitForSelector('dialog#confirm[open]');
  t.equal(await page.$eval('#confirm-text', (e) => e.textContent), "Start takes fastapi from 10% down to 5%, the plan's first step. Start anyway?");
  t.equal(await page.$eval('#confirm-ok', (e) => e.textContent), 'Start at 5%');
  await page.click('#confirm-cancel');
  await waitForText(page, '#rollout-result', /^Not started: fastapi stays at 10%\.$/);
  t.equal(w.app.store.view().weights.fastapi, 10, 'cancelled: nothing moved');
  t.equal(w.app.rollout!.state.phase, 'unmanaged');

  await page.click('#rollout-form button[data-command="start"]');
  await page.waitForSelector('dialog#confirm[open]');
  await page.click('#confirm-ok');
  await waitForText(page, '#rollout-result', /^start: now running, canary at 5%\.$/);
  t.equal(w.app.store.view().weights.fastapi, 5);

  // The issue's case: complete at 100% (promoted fully past a plan ending at 50%), Start would take it to 5%.
  await w.app.rollout!.command('promote', WHO, 'ship it', { full: true });
  await page.waitForFunction(() => document.querySelector('#rollout-phase')?.textContent === 'complete');
  await page.click('#rollout-form button[data-command="start"]');
  await page.waitForSelector('dialog#confirm[open]');
  t.equal(await page.$eval('#confirm-text', (e) => e.textContent), "Start takes fastapi from 100% down to 5%, the plan's first step. Start anyway?");
  await page.keyboard.press('Escape');
  await waitForText(page, '#rollout-result', /^Not started: fastapi stays at 100%\.$/);
  t.equal(w.app.store.view().weights.fastapi, 100);
  t.same(w.app.rollout!.decisions.map((d) => [d.action, d.to]), [['start', 5], ['promote_full', 100]]);
  t.same(problems, []);
});

t.test("idle, the split set by hand: the live canary weight; Start asks, naming the weight it sets; each action's own reason; empty tables say so; the weight history", { skip }, async (t) => {
  const w = await world(t, { rollout: { interval: '1h', window: '1h', steps: [{ weight: 10, hold: '1h' }, { weight: 50, hold: '1h' }] } });
  // A person's 5% before any rollout: the rollout stays idle, its own weight 0%.
  const set = await request(`${w.admin}/weights`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ weights: { fastapi: 5 }, reason: 'a first look' }) });
  t.equal(set.statusCode, 200);
  await set.body.dump();
  t.match(w.app.rollout!.view(), { phase: 'idle', weight: 0 });
  const { page, problems } = await openPage(t);
  await page.evaluateOnNewDocument((token) => sessionStorage.setItem('drum-splitter.token', token), TOKEN);
  await page.goto(`${w.admin}/`);
  await waitForText(page, '#rollout-phase', /^idle$/);
  t.equal(await page.$eval('#rollout-weight', (e) => e.textContent), 'fastapi at 5% (baseline flask)', "the split's weight, not the idle rollout's 0%");
  t.same(await rows(page, '#checks'), [['none yet']], 'no check yet, said');
  t.same(await rows(page, '#decisions'), [['none yet']], 'no decision yet, said');
  t.match(await rows(page, '#history-table'), [
    [/^\d\d:\d\d:\d\d$/, `${WHO} (admin)`, 'flask 100% → 95%, fastapi 0% → 5%', 'a first look'],
    [/^\d\d:\d\d:\d\d$/, 'startup', 'flask 100%, fastapi 0%', 'initial weights'],
  ], 'the weight history, newest first');

  await page.type('#rollout-reason', 'console start');
  await page.click('#rollout-form button[data-command="start"]');
  await page.waitForSelector('dialog#confirm[open]');
  t.same(await page.$$eval('#confirm-title, #confirm-text, #confirm-ok', (es) => es.map((e) => e.textContent)), [
    'Start the rollout',
    "Start takes fastapi from 5% to 10%, the plan's first step (10% 1h).",
    'Start at 10%',
  ]);
  await page.click('#confirm-ok');
  await waitForText(page, '#rollout-result', /^start: now running, canary at 10%\.$/);
  t.equal(await page.$eval('#rollout-reason', (e) => (e as HTMLInputElement).value), '', 'the reason cleared once sent');
  await page.click('#rollout-form button[data-command="abort"]');
  await confirm(page);
  await waitForText(page, '#rollout-result', /^abort: now aborted, canary at 0%\.$/);
  t.same(w.app.rollout!.decisions.slice(0, 2).map((d) => [d.action, d.reason]), [['start', 'console start'], ['abort', null]], "the abort is not recorded with the start's reason");
  await page.waitForFunction(() => document.querySelector('#history-table tbody tr td:nth-child(3)')?.textContent === 'flask 90% → 100%, fastapi 10% → 0%');
  t.same(problems, []);
});

t.test('the fleet controller serves the console: its weights, rollout and replicas; a claimed replica says so and refuses its own; a stopped controller lets go', { skip }, async (t) => {
  const flask = await startUpstream('flask', drum(120, behaving(2)));
  const fastapi = await startUpstream('fastapi', drum(110, behaving(2)));
  const env = { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN };
  const replicas = await Promise.all([0, 1].map(() => startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`] } }, { env, log: silentLog })));
  const [one, two] = replicas.map((r) => `http://127.0.0.1:${r.adminAddress.port}`);
  const gone = `http://127.0.0.1:${await freePort()}`;
  // Prometheus answering a canary as healthy as its baseline: the first step's hold passes, then a person approves.
  const prometheus = await prometheusAnswering({ baseline: 'flask', canary: 'fastapi' }, () => healthy);
  const path = join(t.testdir({}), 'drum.yaml');
  writeFileSync(path, JSON.stringify({
    upstreams: { flask: flask.url, fastapi: fastapi.url },
    rollout: { interval: '100ms', window: '1s', minRequests: 200, steps: [{ weight: 5, hold: '300ms', approve: true }, { weight: 50, hold: '1h' }] },
  }));
  const controller = await startController({ file: readConfigFile(path), prometheus: prometheus.url, proxies: [one!, two!, gone], admin: '127.0.0.1:0', token: TOKEN }, { env, log: silentLog });
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= controller.close());
  t.teardown(async () => {
    await stop();
    await Promise.all([...replicas.map((r) => r.close()), flask.close(), fastapi.close(), new Promise((r) => prometheus.close(r))]);
  });

  const { page, problems } = await openPage(t);
  await page.evaluateOnNewDocument((token) => sessionStorage.setItem('drum-splitter.token', token), TOKEN);
  await page.goto(`http://127.0.0.1:${controller.adminAddress.port}/`);
  await waitForText(page, '#rollout-phase', /^idle$/);
  t.equal(await page.$eval('#title', (e) => e.textContent), 'drum-splitter fleet controller');
  t.equal(await page.title(), 'drum-splitter fleet controller console');
  t.same(await page.$$eval('main > section', (ss) => ss.filter((s) => !(s as HTMLElement).hidden).map((s) => s.id)), ['split', 'rollout', 'fleet', 'judged', 'history'], 'no backends, charts, recording or shadow: a controller has none of its own');
  t.equal(await barText(page, 'fastapi'), '0%', "the fleet's weights");
  t.match(await rows(page, '#replicas'), [
    [one, 'in_sync', 'flask 100%, fastapi 0%', 'at flask=100, fastapi=0', /^\d\d:\d\d:\d\d$/],
    [two, 'in_sync', 'flask 100%, fastapi 0%', 'at flask=100, fastapi=0', /^\d\d:\d\d:\d\d$/],
    [gone, 'unreachable', '—', /ECONNREFUSED/, /^\d\d:\d\d:\d\d$/],
  ], 'each replica with its last round');
  t.equal(await page.$eval(`#replicas a[href="${one}/"]`, (a) => a.textContent), one, "a link to each replica's console");

  await page.click('#rollout-form button[data-command="start"]');
  await page.waitForSelector('dialog#confirm[open]');
  t.equal(await page.$eval('#confirm-text', (e) => e.textContent), "Start takes fastapi from 0% to 5%, the plan's first step (5% 300ms (approve)).");
  await page.click('#confirm-ok');
  await waitForText(page, '#rollout-phase', /^awaiting approval$/, 10_000);
  t.equal(await page.$eval('#rollout-weight', (e) => e.textContent), 'fastapi at 5% (baseline flask)');
  t.match(await page.$eval('#verdict', (e) => e.textContent), /^pass at \d\d:\d\d:\d\d over the rollout's window \(the last 1 s at most, since the step began\): /);

  // A replica's own console while the fleet's rollout awaits approval: the controller's, not its own idle rollout.
  const replica = await openPage(t);
  await replica.page.evaluateOnNewDocument((token) => sessionStorage.setItem('drum-splitter.token', token), TOKEN);
  await replica.page.goto(`${one}/`);
  await waitForText(replica.page, '#rollout-phase', /^run by the fleet controller$/);
  t.equal(await replica.page.$eval('#rollout-weight', (e) => e.textContent), 'fastapi at 5% (baseline flask)', 'the weight the controller set');
  const claim = replicas[0]!.rollout!.view().controller!;
  t.match(await replica.page.$eval('#rollout-claim', (e) => (e as HTMLElement).hidden ? null : e.textContent), /^This replica follows the fleet controller at .* \(token admin, claim held until \d\d:\d\d:\d\d and renewed while it runs\)\. The fleet's rollout, its checks and its commands are there\./);
  t.equal(await replica.page.$eval('#rollout-claim a', (a) => a.getAttribute('href')), claim.controller, 'with a link to the controller');
  t.same(await replica.page.$$eval('#rollout-form button', (bs) => bs.map((b) => [b.textContent, (b as HTMLButtonElement).disabled])), [
    ['Start', true], ['Pause', true], ['Resume', true], ['Approve', true], ['Abort…', true],
  ], 'the commands it would refuse, disabled though the token is set');
  t.equal(await replica.page.$eval('#weight-form fieldset', (f) => (f as HTMLFieldSetElement).disabled), false, 'its weights can still be set (and are undone: said)');
  t.same(await rows(replica.page, '#checks'), [['judged on the fleet controller: see its console']]);
  t.equal(await replica.page.$eval('#verdict', (e) => e.textContent), 'on the fleet controller');

  // Approved on the controller's console: every replica follows.
  await page.click('#rollout-form button[data-command="approve"]');
  await waitForText(page, '#rollout-result', /^approve: now running, canary at 50%\.$/);
  await until(() => replicas.every((r) => r.store.view().weights.fastapi === 50), 5000);
  await waitForText(replica.page, '#rollout-weight', /^fastapi at 50% /);
  t.same(problems, []);

  // The controller stops: it lets its replicas go at once, and their consoles say so.
  await stop();
  t.same(replicas.map((r) => r.rollout!.view().controller), [null, null], 'released, not left to lapse');
  await waitForText(replica.page, '#rollout-phase', /^idle$/);
  t.ok(await replica.page.$eval('#rollout-claim', (e) => (e as HTMLElement).hidden), 'no claim shown');
  t.ok(await replica.page.$$eval('#rollout-form button', (bs) => bs.every((b) => !(b as HTMLButtonElement).disabled)), 'its own commands back');
  t.same(replica.problems, []);
});
