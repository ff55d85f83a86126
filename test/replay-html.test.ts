import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { replayCommand } from '../src/replay/command.js';
import { helpPage } from '../src/common/flags.js';
import { REPLAY_COMMAND, REPLAY_FLAGS } from '../src/replay/options.js';
import { escape, linearTicks, logTicks, MAX_GROUPS, renderHtml } from '../src/replay/html.js';
import { openFile, withoutChromium } from './helpers/chromium.js';
import { buildReport, type ResultRow } from '../src/replay/report.js';
import { NoiseTally } from '../src/compare/noise.js';
import { startUpstream, type UpstreamHandler } from './helpers/net.js';

// The --html page: renderHtml on hand-built reports, then once end to end against real upstreams.

const dir = await mkdtemp(join(tmpdir(), 'replay-html-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const meta = { baseline: 'flask-host', canary: 'fastapi-host', at: '2026-01-02T03:04:05Z' };
const noMemory = { flask: { before: null, after: null }, fastapi: { before: null, after: null } };
const noSkips = { counts: { malformed: 0, truncated: 0 }, first: [] };

type Row = ResultRow;

function row(over: Partial<Row>): Row {
  const path = over.path ?? '/predict/';
  return {
    path,
    flask_status: 200,
    fastapi_status: 200,
    flask_latency_ms: 10,
    fastapi_latency_ms: 12,
    diff: null,
    error: null,
    method: 'POST',
    route: path.replace(/\?.*$/s, ''),
    kind: 'json',
    differences: [],
    source: 'rec.jsonl:1',
    ...over,
  };
}

const XSS = '/x<script>alert(1)</script>';

/** Latencies from 1 to 100 ms (a log axis), a matching request, two mismatches, an error. */
const rows: Row[] = [
  row({ method: 'POST', flask_latency_ms: 1, fastapi_latency_ms: 2 }),
  row({ method: 'POST', flask_latency_ms: 100, fastapi_latency_ms: 80, source: 'rec.jsonl:2' }),
  row({
    method: 'GET',
    path: `${XSS}?q="a"&b='c'`,
    diff: 'differences at $.a (changed)',
    source: 'rec.jsonl:3',
    differences: [
      { path: '$.a', kind: 'changed', baseline: '<b>&', canary: 2, field: '$.a' },
      { path: '$.gone', kind: 'removed', baseline: 'x'.repeat(400), canary: undefined, field: '$.gone' },
    ],
  }),
  row({ method: 'PUT', path: '/predictUnstructured/', diff: 'Status mismatch: Flask=200, FastAPI=500', fastapi_status: 500, source: 'rec.jsonl:4', differences: [{ path: '$', kind: 'status', baseline: 200, canary: 500, field: '$status' }] }),
  row({ path: '/ping', error: 'canary: timeout', source: 'rec.jsonl:5' }),
];

t.test('escape', async (t) => {
  t.equal(escape(`<script>alert("x" & 'y')</script>`), '&#60;script&#62;alert(&#34;x&#34; &#38; &#39;y&#39;)&#60;/script&#62;');
  t.equal(escape('plain'), 'plain');
});

t.test('a report with mismatches', async (t) => {
  const report = buildReport(rows, { counts: { malformed: 1, truncated: 2 }, first: [] }, true, noMemory);
  const html = renderHtml(report, { ...meta, canary: 'http://c/<i>' });
  t.match(html, /^<!DOCTYPE html>/);
  t.match(html, '2026-01-02T03:04:05Z');
  t.match(html, 'http://c/&#60;i&#62;', 'meta escaped');
  t.match(html, /Replay report: <span class="fail">FAIL<\/span>/);
  t.match(html, 'Interrupted');
  t.strictSame(
    report.criteria.map((c) => c.verdict),
    ['fail', 'inconclusive', 'fail', 'not measured'],
  );
  for (const c of report.criteria) {
    t.match(html, new RegExp(`<td>${c.name}</td>.*?<td><span class="${c.verdict.replace(' ', '-')}">${c.verdict.toUpperCase()}</span></td>`), c.name);
  }
  t.match(html, '<tr><td>match_rate</td><td>40.0% <small>(2 of 5 requests match)</small></td><td>100%</td>', 'a rate as a percent, beside its criterion');
  t.match(html, '<tr><td>no_oom</td><td>no container limits in /stats/</td><td>0 backends at their container memory limit</td><td><span class="not-measured">NOT MEASURED</span>');
  t.match(html, '<p>Criteria: 2 fail (match_rate, error_responses_match), 1 inconclusive (canary_p99_within_20_percent), 1 not measured (no_oom). Not measured is neither');
  t.notMatch(html, '<h2>Noise</h2>', 'no noise sample, no noise section');
  t.match(html, '<tr><th>lines skipped (malformed / truncated)</th><td>1 / 2</td></tr>');

  const svg = /<svg[^]*?<\/svg>/.exec(html)![0];
  t.equal(svg.match(/<path /g)?.length, 2, 'two CDF curves');
  t.match(svg, '#1f6fb4');
  t.match(svg, '#e6550d');
  t.match(svg, 'latency (ms, log scale)', '1 to 100 ms spans more than 20×; the unit on the axis');
  t.same([...svg.matchAll(/<text class="tick"[^>]*>([^<]*)</g)].map((m) => m[1]), ['1', '2', '5', '10', '20', '50', '100', '0%', '25%', '50%', '75%', '100%'], 'round ticks');
  t.same(
    [...svg.matchAll(/<text class="legend"[^>]*>([^<]*)</g)].map((m) => m[1]),
    ['baseline', 'p50 10.0 ms', 'p99 97.3 ms', 'canary', 'p50 12.0 ms', 'p99 78.0 ms'],
    'the legend: each side, its p50 and p99 with units',
  );

  t.match(html, '<tr><td>/predict/</td><td>2</td><td>0</td><td>0</td>');
  t.match(html, '<tr><td>/ping</td><td>1</td><td>0</td><td>1</td>');
  t.match(html, '<tr><td>/x&#60;script&#62;alert(1)&#60;/script&#62;</td><td>1</td><td>1</td>');
  t.notMatch(html, '<script', 'no raw script tag anywhere');

  t.match(html, '<p>2 requests differed, in 2 ways: each way once, with how many requests and the first of them.</p>');
  t.match(
    html,
    '<h3>1 × GET <code>/x&#60;script&#62;alert(1)&#60;/script&#62;</code> <small>200 vs 200 at $.a (changed), $.gone (removed)</small></h3>\n<p>one request; the first: <code>/x&#60;script&#62;alert(1)&#60;/script&#62;?q=&#34;a&#34;&#38;b=&#39;c&#39;</code> <small>rec.jsonl:3</small></p>',
  );
  t.match(html, '<tr><td><code>$.a</code></td><td>changed</td><td><code>&#34;&#60;b&#62;&#38;&#34;</code></td><td><code>2</code></td></tr>');
  t.match(html, /<td><code>\$.gone<\/code><\/td><td>removed<\/td><td><code>&#34;x{299}…<\/code><\/td><td><code>\(absent\)<\/code><\/td>/, 'a long value cut');
  t.match(html, '<h3>1 × PUT <code>/predictUnstructured/</code> <small>200 vs 500 at $status (status)</small></h3>', 'each kind with its method');
  t.notMatch(html, 'rec.jsonl:5', 'an error is not a mismatch');

  // Self-contained: nothing fetched, nothing run.
  t.notMatch(html, /\b(src|href)\s*=/i);
  t.notMatch(html, /url\(|@import/i);
  t.notMatch(renderHtml(report, meta), /https?:\/\//, 'no URL but the ones in meta');
});

t.test('the noise section: each field that differed between two baseline answers, its rates and verdict', async (t) => {
  const tally = new NoiseTally();
  for (let i = 0; i < 10; i++) tally.add({ route: '/predict/', fields: ['$.meta.time', ...(i < 5 ? ['$.p<1>'] : [])], noise: ['$.meta.time', ...(i === 0 ? ['$.p<1>'] : [])] });
  tally.discount({ route: '/predict/', fields: ['$.meta.time'] }, ['$.meta.time']);
  const html = renderHtml(buildReport([row({})], noSkips, false, noMemory, { noise: tally.report() }), meta);
  t.match(html, /<h2>Noise<\/h2>\n<p>Fields that differed between two answers of the baseline\. .* over 20% relative and 0\.03% absolute; .* 1 requests matched only so\.<\/p>/);
  t.match(html, '<tr><td>/predict/</td><td><code>$.meta.time</code></td><td>10 of 10 (100%)</td><td>10 of 10 (100%)</td><td>0%</td><td>0%</td><td>noise</td><td>1</td></tr>');
  t.match(html, '<tr><td>/predict/</td><td><code>$.p&#60;1&#62;</code></td><td>5 of 10 (50%)</td><td>1 of 10 (10%)</td><td>66.667%</td><td>40%</td><td>real</td><td>0</td></tr>');
});

t.test('an empty report', async (t) => {
  const html = renderHtml(buildReport([], noSkips, false, noMemory), meta);
  t.notMatch(html, /NaN|Infinity|undefined/);
  t.match(html, 'no latencies');
  t.notMatch(html, '<path ');
  t.notMatch(html, 'Interrupted');
  t.match(html, '<h2>Mismatches</h2>\n<p>None.</p>');
});

t.test('a narrow range is linear; all 0 ms still draws', async (t) => {
  const narrow = renderHtml(buildReport([row({}), row({ flask_latency_ms: 11, fastapi_latency_ms: 13 })], noSkips, false, noMemory), meta);
  t.notMatch(narrow, 'log scale');
  t.match(narrow, /Replay report: <span class="inconclusive">INCONCLUSIVE<\/span>/, 'two latencies a side: no p99 to judge by');
  t.equal(narrow.match(/<path /g)?.length, 2);
  t.match(narrow, /p99 13\.0 ms/, 'a latency from 10 ms: one decimal');
  const slow = renderHtml(buildReport([row({ flask_latency_ms: 250.4, fastapi_latency_ms: 1.234 })], noSkips, false, noMemory), meta);
  t.match(slow, />p50 250 ms</, 'from 100 ms: whole milliseconds');
  t.match(slow, />p50 1\.23 ms</, 'under 10 ms: two decimals');
  const zero = renderHtml(buildReport([row({ flask_latency_ms: 0, fastapi_latency_ms: 0 })], noSkips, false, noMemory), meta);
  t.notMatch(zero, /NaN|Infinity/);
  t.equal(zero.match(/<path /g)?.length, 2);
});

t.test('200,000 requests: the page is drawn (a spread of every latency overflowed the stack)', async (t) => {
  const many = Array.from({ length: 200_000 }, (_, i) => row({ flask_latency_ms: 1 + (i % 97), fastapi_latency_ms: 2 + (i % 89), source: `rec.jsonl:${i + 1}` }));
  const html = renderHtml(buildReport(many, noSkips, false, noMemory), meta);
  t.match(html, /<svg/);
  t.match(html, /baseline p99/);
});

t.test(`identical mismatches grouped: one entry a kind, its count, one example; at most ${MAX_GROUPS} kinds`, async (t) => {
  const changed = (i: number, field: string, canary: number): Row =>
    row({ diff: 'd', source: `rec.jsonl:${i + 1}`, path: `/predict/?i=${i}`, differences: [{ path: field, kind: 'changed', baseline: 1, canary, field }] });
  // 300 alike, 3 at another field with two sets of values, then MAX_GROUPS more of one each.
  const many = [
    ...Array.from({ length: 300 }, (_, i) => changed(i, '$.a', 2)),
    ...[5, 6, 5].map((v, i) => changed(300 + i, '$.b', v)),
    ...Array.from({ length: MAX_GROUPS }, (_, i) => changed(303 + i, `$.c${i}`, 2)),
  ];
  const html = renderHtml(buildReport(many, noSkips, false, noMemory), meta);
  t.match(html, `<p>${303 + MAX_GROUPS} requests differed, in ${MAX_GROUPS + 2} ways: each way once, with how many requests and the first of them. The first ${MAX_GROUPS} kinds are shown; the JSON report has every request.</p>`);
  t.equal(html.match(/class="mismatch"/g)?.length, MAX_GROUPS);
  t.match(html, '<h3>300 × POST <code>/predict/</code> <small>200 vs 200 at $.a (changed)</small></h3>\n<p>300 requests, all with these values; the first: <code>/predict/?i=0</code> <small>rec.jsonl:1</small></p>');
  t.match(html, '<h3>3 × POST <code>/predict/</code> <small>200 vs 200 at $.b (changed)</small></h3>\n<p>3 requests, with 2 different sets of values; the first: <code>/predict/?i=300</code> <small>rec.jsonl:301</small></p>');
  t.notMatch(html, 'rec.jsonl:2<', 'the others alike are counted, not listed');
  t.notMatch(html, `$.c${MAX_GROUPS - 1} `, 'kinds past the limit left out');

  const one = renderHtml(buildReport([changed(0, '$.a', 2), changed(1, '$.a', 2)], noSkips, false, noMemory), meta);
  t.match(one, '<p>2 requests differed, in 1 way: ');
});

t.test('every criterion measured: no word about not measured', async (t) => {
  const memory = { rss: 1, containerMaxUsed: 1, containerLimit: 2 };
  const measured = { flask: { before: memory, after: memory }, fastapi: { before: memory, after: memory } };
  const html = renderHtml(buildReport([row({ flask_status: 422, fastapi_status: 422 })], noSkips, false, measured), meta);
  t.match(html, '<p>Criteria: 3 pass (match_rate, error_responses_match, no_oom), 1 inconclusive (canary_p99_within_20_percent).</p>');
  t.match(html, '<tr><td>no_oom</td><td>0 at the limit</td><td>0 backends at their container memory limit</td><td><span class="pass">PASS</span>', 'a value without a note');
  t.notMatch(html, 'Not measured');
});

t.test('round ticks: 1, 2 or 5 × a power of ten', async (t) => {
  const linear: [number, number[]][] = [
    [11.701, [0, 5, 10, 15]],
    [23.403, [0, 5, 10, 15, 20, 25]],
    [1, [0, 0.2, 0.4, 0.6, 0.8, 1]],
    [0.3, [0, 0.1, 0.2, 0.3]],
    [97, [0, 20, 40, 60, 80, 100]],
    [4321, [0, 1000, 2000, 3000, 4000, 5000]],
  ];
  for (const [hi, want] of linear) t.same(linearTicks(hi).ticks, want, `linear to ${hi}`);
  const log: [number, number, number[]][] = [
    [1, 100, [1, 2, 5, 10, 20, 50, 100]],
    [0.31, 42, [0.2, 0.5, 1, 2, 5, 10, 20, 50]],
    [3, 250_000, [1, 10, 100, 1000, 10_000, 100_000, 1_000_000]],
  ];
  for (const [lo, hi, want] of log) t.same(logTicks(lo, hi), want, `log from ${lo} to ${hi}`);
});

t.test('in chromium: the ticks, the axes\' names and the legend overlap nothing, each other nor the curves', { skip: withoutChromium() }, async (t) => {
  // A long tail (a log axis) and a narrow range (linear, the 11.701-style ticks before).
  const pages = {
    log: buildReport(rows, noSkips, false, noMemory),
    linear: buildReport(Array.from({ length: 40 }, (_, i) => row({ flask_latency_ms: 9 + (i % 7) * 0.4, fastapi_latency_ms: 9.5 + (i % 5) * 0.5 })), noSkips, false, noMemory),
  };
  const files = Object.entries(pages).map(([name, report]) => {
    const file = join(dir, `${name}.html`);
    return [name, file, renderHtml(report, meta)] as const;
  });
  for (const [, file, html] of files) await writeFile(file, html);
  const { page, problems } = await openFile(t, files[0]![1]);
  for (const [name, file] of files) {
    await page.goto(`file://${file}`);
    const drawn = await page.$eval('svg[role="img"]', (svg) => {
      const box = (e: Element) => {
        const r = e.getBoundingClientRect();
        return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, text: e.textContent ?? '' };
      };
      return {
        svg: box(svg),
        texts: [...svg.querySelectorAll('text')].map(box),
        ticks: [...svg.querySelectorAll('text.tick')].map((e) => e.textContent),
        names: [...svg.querySelectorAll('text.axis-name')].map((e) => e.textContent),
        curves: [...svg.querySelectorAll('path')].map(box),
      };
    });
    type Box = (typeof drawn)['svg'];
    const overlap = (a: Box, b: Box): boolean => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    t.equal(drawn.curves.length, 2, `${name}: both curves`);
    const clashes = drawn.texts.flatMap((a, i) => [...drawn.texts.slice(i + 1), ...drawn.curves].filter((b) => overlap(a, b)).map((b) => `${a.text} × ${b.text || 'a curve'}`));
    t.same(clashes, [], `${name}: no text over another or over a curve`);
    t.ok(drawn.texts.every((b) => b.left >= drawn.svg.left && b.right <= drawn.svg.right && b.top >= drawn.svg.top && b.bottom <= drawn.svg.bottom), `${name}: every text inside the chart`);
    t.ok(drawn.ticks.every((l) => /^(\d+(\.\d)?|\d+%)$/.test(l ?? '')), `${name}: round ticks ${drawn.ticks.join(' ')}`);
    t.match(drawn.names, [/^latency \(ms/, /\(%\)$/], `${name}: the axes named, with their units`);
  }
  t.same(problems, []);
});

t.test('--html end to end', async (t) => {
  t.match(REPLAY_FLAGS.find((f) => f.flag === 'html'), { kind: 'value' });
  t.match(helpPage(REPLAY_COMMAND), /^\s+--html FILE/m);
  // Both answer alike after a steady 40 ms, so the page's verdicts all pass (the p99's from 102 latencies a side).
  const slow: UpstreamHandler = (req, res) => {
    res.setHeader('content-type', 'application/json');
    setTimeout(() => res.end(JSON.stringify({ path: req.url })), 40);
  };
  const b = await startUpstream('flask', slow);
  const c = await startUpstream('fastapi', slow);
  t.teardown(() => Promise.all([b.close(), c.close()]));
  const rec = join(dir, 'rec.jsonl');
  await writeFile(rec, ['/a', '/b', '/a?x=1'].map((path) => `${JSON.stringify({ method: 'GET', path, headers: {}, body_hex: '' })}\n`).join(''));
  const output = join(dir, 'out.json');
  const html = join(dir, 'out.html');
  const stderr: string[] = [];
  const code = await replayCommand({ baseline: b.url, canary: c.url, output, html, repeat: '34' }, [rec], { stderr: (l) => stderr.push(l), stdout: () => undefined, stderrIsTTY: false });
  t.equal(code, 0, stderr.join('\n'));
  t.match(stderr.at(-1), `report in ${output} and ${html}`);
  const page = await readFile(html, 'utf8');
  t.match(page, /<svg[^]*<path [^]*<path [^]*<\/svg>/);
  t.match(page, `baseline <code>${b.url}/</code>`);
  t.match(page, '<tr><td>/a</td><td>68</td>');
  t.match(page, /Replay report: <span class="pass">PASS<\/span>/);
  t.match(JSON.parse(await readFile(output, 'utf8')), { summary: { total_requests: 102 } }, 'the JSON still written');

  // Checked up front, like --output.
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ html: join(dir, 'no', 'such', 'out.html') }, /^--html: cannot write/],
    [{ html: rec }, /^--html .* is one of the recordings being replayed/],
    [{ html: output }, /is the --output file/],
  ];
  for (const [values, message] of bad) {
    await t.rejects(replayCommand({ baseline: b.url, canary: c.url, output, ...values }, [rec], { stderr: () => undefined }), { name: 'InputError', message }, message.source);
  }
});
