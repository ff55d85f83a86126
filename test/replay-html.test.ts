import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { replayCommand } from '../src/replay/command.js';
import { helpPage } from '../src/common/flags.js';
import { REPLAY_COMMAND, REPLAY_FLAGS } from '../src/replay/options.js';
import { escape, MAX_MISMATCHES, renderHtml } from '../src/replay/html.js';
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
  t.match(html, '(no container limits in /stats/)', 'a criterion note');
  t.notMatch(html, '<h2>Noise</h2>', 'no noise sample, no noise section');
  t.match(html, '<tr><th>lines skipped (malformed / truncated)</th><td>1 / 2</td></tr>');

  const svg = /<svg[^]*?<\/svg>/.exec(html)![0];
  t.equal(svg.match(/<path /g)?.length, 2, 'two CDF curves');
  t.match(svg, '#1f6fb4');
  t.match(svg, '#e6550d');
  t.match(svg, '(log scale)', '1 to 100 ms spans more than 20×');
  t.match(svg, /baseline p50 .*baseline p99 .*canary p50 .*canary p99/s);
  t.match(svg, /text-anchor="end" y="\d+" fill="#1f6fb4">baseline p99 /, 'a label in the right half runs leftwards, inside the plot');
  t.match(svg, />baseline<\/text>.*>canary<\/text>/s, 'legend');

  t.match(html, '<tr><td>/predict/</td><td>2</td><td>0</td><td>0</td>');
  t.match(html, '<tr><td>/ping</td><td>1</td><td>0</td><td>1</td>');
  t.match(html, '<tr><td>/x&#60;script&#62;alert(1)&#60;/script&#62;</td><td>1</td><td>1</td>');
  t.notMatch(html, '<script', 'no raw script tag anywhere');

  t.match(html, /<h3>GET <code>\/x&#60;script&#62;alert\(1\)&#60;\/script&#62;\?q=&#34;a&#34;&#38;b=&#39;c&#39;<\/code> <small>rec.jsonl:3 · 200 vs 200<\/small><\/h3>/);
  t.match(html, '<tr><td><code>$.a</code></td><td>changed</td><td><code>&#34;&#60;b&#62;&#38;&#34;</code></td><td><code>2</code></td></tr>');
  t.match(html, /<td><code>\$.gone<\/code><\/td><td>removed<\/td><td><code>&#34;x{299}…<\/code><\/td><td><code>\(absent\)<\/code><\/td>/, 'a long value cut');
  t.match(html, /<h3>PUT <code>\/predictUnstructured\/<\/code> <small>rec.jsonl:4 · 200 vs 500<\/small>/, 'each mismatch with its method');
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

t.test(`at most ${MAX_MISMATCHES} mismatches listed`, async (t) => {
  const many = Array.from({ length: MAX_MISMATCHES + 1 }, (_, i) => row({ method: 'POST', diff: 'd', source: `rec.jsonl:${i + 1}` }));
  const html = renderHtml(buildReport(many, noSkips, false, noMemory), meta);
  t.match(html, `Showing the first ${MAX_MISMATCHES} of ${MAX_MISMATCHES + 1}`);
  t.equal(html.match(/class="mismatch"/g)?.length, MAX_MISMATCHES);
  t.notMatch(html, `rec.jsonl:${MAX_MISMATCHES + 1}<`);
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
