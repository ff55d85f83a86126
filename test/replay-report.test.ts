import t from 'tap';
import { percentile, summarize, type ResultRow } from '../src/replay/report.js';

// The seed's generate_report (CANARY_DEPLOYMENT.md), checked against values its Python gives.

t.test('percentile interpolates between closest ranks as the seed does', async (t) => {
  t.equal(percentile([], 0.5), 0);
  t.equal(percentile([4, 1, 3, 2], 0.5), 2.5);
  t.equal(percentile([4, 1, 3, 2], 0.99), 3.9699999999999998);
  t.equal(percentile([10, 20], 0.95), 19.5);
  t.equal(percentile([7], 0.99), 7);
});

const row = (flask: number, fastapi: number, more: Partial<ResultRow> = {}): ResultRow => ({
  path: '/predict/',
  method: 'POST',
  flask_status: 200,
  fastapi_status: 200,
  flask_latency_ms: flask,
  fastapi_latency_ms: fastapi,
  diff: null,
  error: null,
  route: '/predict/',
  kind: 'json',
  differences: [],
  source: 'rec.jsonl:1',
  ...more,
});

t.test('summary: match rate and latency improvement formatted as the seed formats them', async (t) => {
  const summary = summarize([row(10, 8), row(20, 25, { diff: 'Status mismatch: Flask=200, FastAPI=500' }), row(30, 40), row(1, 1, { error: 'canary: timeout after 30000 ms' })]);
  t.match(summary, { total_requests: 4, errors: 1, response_mismatches: 1, match_rate: '50.00%' });
  t.strictSame(summary.flask_latency, { p50: 20, p95: 29, p99: 29.8 }, 'the errored request is left out');
  // Python: f"{(1 - 25 / 20) * 100:.1f}%" and f"{(1 - 39.7 / 29.8) * 100:.1f}%"
  t.strictSame(summary.latency_improvement, { p50: '-25.0%', p99: '-33.2%' });
});
