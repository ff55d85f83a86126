/**
 * The summary report and custom checks end to end, on short real durations: the whole app
 * in-process, real upstreams and a real acceptance webhook on 127.0.0.1, real traffic through the
 * proxy, the admin API, the CLI, and the report's HTML opened in Debian's chromium.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { startApp, type RunningApp } from '../src/app.js';
import { readConfigFile } from '../src/config/config.js';
import { behaving, runCli, silentLog, startUpstream, steadyTraffic } from './helpers/net.js';
import { openFile, withoutChromium } from './helpers/chromium.js';
import { until } from './helpers/wait.js';

const TOKEN = 'report-e2e-token-0123456789';
const FAST = { interval: '150ms', window: '1s', minRequests: 20 };

async function serve(t: Test, rollout: Record<string, unknown>, opts: { state?: string; log?: pino.Logger; traffic?: boolean } = {}): Promise<{ app: RunningApp; admin: string }> {
  const flask = await startUpstream('flask', behaving(2));
  const fastapi = await startUpstream('fastapi', behaving(2));
  const path = join(t.testdir({}), 'drum.yaml');
  writeFileSync(path, JSON.stringify({ upstreams: { flask: flask.url, fastapi: fastapi.url }, rollout }));
  const app = await startApp(
    { file: { path, settings: readConfigFile(path) }, flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...(opts.state === undefined ? {} : { state: opts.state }) } },
    { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: opts.log ?? silentLog },
  );
  const traffic = opts.traffic === false ? undefined : steadyTraffic((i) => `http://127.0.0.1:${app.proxy.address.port}/predict/${i % 500}`);
  t.teardown(async () => {
    await traffic?.stop();
    await app.close();
    await Promise.all([flask.close(), fastapi.close()]);
    if (opts.state !== undefined) rmSync(dirname(opts.state), { recursive: true, force: true });
  });
  return { app, admin: `http://127.0.0.1:${app.adminAddress.port}` };
}

/**
 * A directory for --state, removed by serve's teardown once the app has closed. Not the test's
 * testdir: serve empties that for its config, and tap removes it while the app may still write.
 */
const stateDir = (): string => mkdtempSync(join(tmpdir(), 'drum-report-'));

const post = async (url: string): Promise<number> => (await request(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' })).statusCode;

/** A logger whose lines the test reads. */
function capturing(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) }) };
}

t.test('a failing acceptance webhook holds the step; passing, the rollout completes; its report is written beside --state, served and drawn', async (t) => {
  const dir = stateDir();
  let passing = false;
  const acceptance = await startUpstream('acceptance', (_req, res) => res.end(JSON.stringify(passing ? { pass: true, value: 0 } : { pass: false, value: 4, why: '4 acceptance tests fail' })));
  t.teardown(() => acceptance.close());
  const { app, admin } = await serve(t, { ...FAST, checks: [{ name: 'acceptance', webhook: acceptance.url, timeout: '1s' }], steps: [{ weight: 10, hold: '500ms' }, { weight: 50, hold: '500ms' }] }, { state: join(dir, 'state.json') });
  t.equal(await post(`${admin}/rollout/start`), 200);
  await until(() => app.rollout!.view().lastVerdict?.checks.some((c) => c.check === 'acceptance' && c.status === 'miss') === true, 10_000);
  t.match(app.rollout!.view().lastVerdict, { action: /miss|inconclusive/ });
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(app.store.view().weights.fastapi, 10, 'held at 10% for three times its hold while the check fails');
  const metrics = await (await request(`${admin}/metrics`)).body.text();
  t.match(metrics, /drum_canary_check\{check="acceptance"\} 4/);
  t.match(JSON.parse(acceptance.seen[0]!.body.toString()), { check: 'acceptance', canary: 'fastapi', baseline: 'flask', phase: 'running', weight: 10 });
  passing = true;
  await until(() => app.rollout!.state.phase === 'complete', 20_000);
  t.match(app.rollout!.decisions.find((d) => d.action === 'promote')!.checks!.at(-1), { check: 'acceptance', status: 'ok', custom: 'webhook' });

  // Written when it ended, beside --state.
  const html = join(dir, 'state.rollout-report.html');
  const md = join(dir, 'state.rollout-report.md');
  await until(() => existsSync(html) && existsSync(md), 5000);
  t.match(readFileSync(md, 'utf8'), /^# Rollout report: fastapi over flask\n\ncomplete at 50%/);
  const served = (await (await request(`${admin}/rollout/report`)).body.json()) as { phase: string; steps: { weight: number; upstreams: Record<string, { requests: number }>; decisions: { action: string }[] }[] };
  t.match(served, { phase: 'complete', steps: [{ weight: 10 }, { weight: 50 }] });
  t.ok(served.steps[0]!.upstreams.fastapi!.requests > 20, `${served.steps[0]!.upstreams.fastapi!.requests} canary requests at 10%`);
  // The failing check's windows: suspected (the first of confirm's two), then missed with nothing held yet.
  t.same(served.steps.flatMap((s) => s.decisions.map((d) => d.action)).filter((a) => a !== 'suspect' && a !== 'hold'), ['start', 'promote', 'complete']);
  t.ok(served.steps[0]!.decisions.some((d) => d.action === 'suspect'), 'the failing check in the first period\'s decisions');

  // The CLI writes both; with neither, the Markdown on stdout.
  const files = { html: join(dir, 'cli.html'), md: join(dir, 'cli.md') };
  const written = await runCli(['rollout', 'report', '--admin-url', admin, '--html', files.html, '--md', files.md]);
  t.equal(written.code, 0, written.stderr);
  t.match(written.stderr, /rollout report \(complete, 2 periods\) written to .*cli.html and .*cli.md/);
  t.match(readFileSync(files.md, 'utf8'), /\| 1 \| 1 \| 10% \|/);
  const printed = await runCli(['rollout', 'report', '--admin-url', admin]);
  t.match(printed.stdout, /^# Rollout report: fastapi over flask/);
  const unwritable = await runCli(['rollout', 'report', '--admin-url', admin, '--md', join(dir, 'no', 'such', 'dir.md')]);
  t.match([unwritable.code, unwritable.stderr], [2, /the report cannot be written: ENOENT/]);
  const notOurs = await startUpstream('other', (_req, res) => res.end('{"weights": {}}'));
  t.teardown(() => notOurs.close());
  const wrong = await runCli(['rollout', 'report', '--admin-url', notOurs.url]);
  t.match([wrong.code, wrong.stderr], [1, /answered GET \/rollout\/report with no report/]);

  // The page in chromium: its charts drawn, nothing logged.
  t.test('the report renders in chromium', { skip: withoutChromium() }, async (t) => {
    const { page, problems } = await openFile(t, html);
    const drawn = await page.evaluate(() => {
      const box = (el: Element | null): number => (el === null ? 0 : el.getBoundingClientRect().width * el.getBoundingClientRect().height);
      const line = document.querySelector('#weight-chart path.series') as SVGPathElement | null;
      return {
        weightLength: line?.getTotalLength() ?? 0,
        weightBox: box(document.querySelector('#weight-chart')),
        p99Bars: [...document.querySelectorAll('#p99-chart rect.bar')].map((r) => (r as SVGRectElement).getBBox().height),
        memoryChart: box(document.querySelector('#memory-chart')),
        rows: document.querySelectorAll('table tr').length,
        title: document.title,
      };
    });
    t.ok(drawn.weightLength > 100, `the weight line is drawn (${drawn.weightLength.toFixed(0)} px long)`);
    t.ok(drawn.weightBox > 0);
    t.ok(drawn.p99Bars.length >= 1 && drawn.p99Bars.every((h) => h > 0), `p99 bars drawn: ${drawn.p99Bars.map((h) => h.toFixed(0)).join(', ')}`);
    t.ok(drawn.memoryChart > 0);
    t.equal(drawn.rows, 3, 'a header and two periods');
    t.equal(drawn.title, 'Rollout report: fastapi over flask');
    t.same(problems, [], 'no console errors, nothing fetched');
  });
});

t.test('an aborted rollout without --state: the report is not written, and the log says how to get it', async (t) => {
  const { log, lines } = capturing();
  const { admin } = await serve(t, { ...FAST, steps: [{ weight: 10, hold: '1h' }] }, { log, traffic: false });
  await post(`${admin}/rollout/start`);
  await post(`${admin}/rollout/abort`);
  await until(() => lines.some((l) => /report is not written without --state/.test(String(l.msg))), 5000);
  t.match(lines.find((l) => /report is not written/.test(String(l.msg))), { phase: 'aborted', msg: /drum-splitter rollout report --admin-url URL --html FILE --md FILE writes it/ });
});

t.test('a report that cannot be written beside --state is logged, and the rollout goes on', async (t) => {
  const { log, lines } = capturing();
  const dir = stateDir();
  const { admin } = await serve(t, { ...FAST, steps: [{ weight: 10, hold: '1h' }] }, { log, traffic: false, state: join(dir, 'state.json') });
  mkdirSync(join(dir, 'state.rollout-report.html'));
  await post(`${admin}/rollout/start`);
  await post(`${admin}/rollout/abort`);
  await until(() => lines.some((l) => /report cannot be written/.test(String(l.msg))), 5000);
  t.match(lines.find((l) => /report cannot be written/.test(String(l.msg))), { level: 50, err: /EISDIR/, html: /state.rollout-report.html$/ });
  t.equal(await post(`${admin}/rollout/start`), 200, 'a new rollout starts');
});

t.test('serve reads a plan with a query check (its fleet controller shares the file), says so once, and will not start it', async (t) => {
  const { log, lines } = capturing();
  const { admin } = await serve(t, { checks: [{ name: 'cpu', query: 'up', max: 1 }] }, { log, traffic: false });
  t.match(lines.filter((l) => /PromQL/.test(String(l.msg))), [{ level: 40, checks: ['cpu'], msg: 'rollout: the plan\'s check "cpu" is a PromQL query, and this process has no Prometheus: drum-splitter controller runs this plan; this process will not start it' }]);
  const res = await request(`${admin}/rollout/start`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
  t.equal(res.statusCode, 409);
  t.match(await res.body.json(), { error: 'conflict', message: /the plan's check "cpu" is a PromQL query/, phase: 'idle' });
});
