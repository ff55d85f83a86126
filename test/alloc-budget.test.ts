/**
 * Bytes allocated a request: the guard on the request path's cost that this machine can hold
 * steady. CPU time a request moves by tens of percent from run to run here; the bytes a request
 * allocates repeat to about a percent (bench/alloc.ts: the built CLI with a probe loaded,
 * warmed up, then a fixed number of predictions). A change that adds work to every request adds
 * allocation with it and fails here, in CI, rather than in the next benchmark.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { allocationPerRequest, serveTarget, type AllocOptions } from '../bench/alloc.js';

/**
 * `serve` with its defaults (5% to a canary; metrics, polling, the console's series). Measured
 * MEASURED bytes a request (Node 24, `npm run bench:alloc`, 2026-12-07); the budget is that +10%.
 */
const MEASURED = 16_300;
const BUDGET = Math.round(MEASURED * 1.1);
/** Recording 1% of predictions may add at most this share to a request's bytes. */
const RECORDING_SHARE = 0.03;
/** Enough warm-up for the JIT to settle: with 20,000 and 20,000, repeated runs agree to 0.2%. */
const OPTS: AllocOptions = { requests: 20_000, warmup: 20_000, connections: 32 };

t.test(`a default serve allocates at most ${BUDGET} bytes a request, and recording 1% at most ${RECORDING_SHARE * 100}% more`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'drum-alloc-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const off = await allocationPerRequest(serveTarget('serve'), OPTS);
  t.ok(off.bytesPerRequest <= BUDGET, `serve: ${off.bytesPerRequest.toFixed(0)} bytes a request (budget ${BUDGET})`);
  t.ok(off.bytesPerRequest > MEASURED / 2, 'the probe counted the requests (a budget that nothing could exceed would prove nothing)');

  const file = join(dir, 'recorded.jsonl');
  const on = await allocationPerRequest(serveTarget('serve, recording 1%', () => ['--record', file, '--record-sample', '0.01']), OPTS);
  const extra = on.bytesPerRequest / off.bytesPerRequest - 1;
  t.ok(extra <= RECORDING_SHARE, `recording 1%: ${on.bytesPerRequest.toFixed(0)} bytes a request, ${(100 * extra).toFixed(1)}% more than off`);
  const lines = readFileSync(file, 'utf8').split('\n').length - 1;
  const sent = OPTS.requests + OPTS.warmup;
  t.ok(lines > sent * 0.007 && lines < sent * 0.013, `${lines} of ${sent} predictions recorded: about 1%, so the budget covers recording's work`);
});

