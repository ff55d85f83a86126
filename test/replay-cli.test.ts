/** `drum-splitter replay` as a user runs it: the real CLI against two real backends. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCli, startUpstream } from './helpers/net.js';

t.test('replay: a recording against two backends that agree, each request 20 times → the seed summary, exit 0; too few → exit 3; a foreign flag → exit 2', async (t) => {
  // Answers after 40 ms: at a millisecond, timing jitter alone would break the p99-within-20% criterion.
  const agree = (_req: unknown, res: import('node:http').ServerResponse): void => void setTimeout(() => res.end('{"predictions":[0.5]}'), 40);
  const flask = await startUpstream('flask', agree);
  const fastapi = await startUpstream('fastapi', agree);
  t.teardown(() => Promise.all([flask.close(), fastapi.close()]));
  const dir = t.testdir({});
  const file = join(dir, 'rec.jsonl');
  const line = { timestamp: 1, method: 'POST', path: '/predict/', headers: { 'Content-Type': 'text/csv' }, body_hex: Buffer.from('a\n1\n').toString('hex'), content_type: 'text/csv' };
  writeFileSync(file, `${JSON.stringify(line)}\n`.repeat(5));
  const output = join(dir, 'out.json');
  const r = await runCli(['replay', '--flask-url', flask.url, '--fastapi-url', fastapi.url, '--requests-file', file, '--output', output, '--repeat', '20']);
  t.equal(r.code, 0, r.stderr);
  const report = JSON.parse(readFileSync(output, 'utf8')) as { summary: Record<string, unknown> };
  t.match(report.summary, { total_requests: 100, errors: 0, response_mismatches: 0, match_rate: '100.00%' });
  t.equal(fastapi.seen.filter((r) => r.url !== '/stats/').length, 100, 'each request reached the canary 20 times (and its /stats/ was read before and after)');
  const few = await runCli(['replay', '--baseline', flask.url, '--canary', fastapi.url, '--output', output, file]);
  t.match(few, { code: 3, stderr: /replay: INCONCLUSIVE canary_p99_within_20_percent: p99: 5 canary and 5 baseline requests, fewer than 100 each/ });
  const foreign = await runCli(['replay', '--listen', '127.0.0.1:0', '--baseline', flask.url, '--canary', fastapi.url, file]);
  t.match(foreign, { code: 2, stderr: 'drum-splitter replay: unknown option --listen (see drum-splitter replay --help)\n' });
});
