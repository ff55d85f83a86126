// What the CLI needs of replay before it runs: its flags and its --help. Apart from command.ts so
// that other commands do not load replay itself (its undici pool, the progress bar, the HTML report).
import { wrapped, type Command, type Flag } from '../common/flags.js';
import { DEFAULT_MIN_P99_DIFFERENCE } from '../rollout/plan.js';

/** The flags of `drum-splitter replay`; the seed's spellings (--flask-url, --fastapi-url) and ours. */
export const REPLAY_FLAGS = [
  { flag: 'baseline', kind: 'value', arg: 'URL', help: 'the baseline (required; the runbook script calls it --flask-url)' },
  { flag: 'flask-url', kind: 'value', arg: 'URL', help: 'the same' },
  { flag: 'canary', kind: 'value', arg: 'URL', help: 'the canary (required; the runbook script calls it --fastapi-url)' },
  { flag: 'fastapi-url', kind: 'value', arg: 'URL', help: 'the same' },
  { flag: 'requests-file', kind: 'list', arg: 'FILE', help: 'a recording (repeatable; or FILEs as arguments, e.g. rec.jsonl rec.jsonl.1 rec.jsonl.2)' },
  { flag: 'concurrency', kind: 'value', arg: 'N', default: '10', help: 'requests in flight to each backend' },
  { flag: 'rate', kind: 'value', arg: 'N', help: 'requests started per second (default: no limit)' },
  { flag: 'timeout', kind: 'value', arg: 'DURATION', default: '30s', help: 'per request' },
  { flag: 'output', kind: 'value', arg: 'FILE', default: 'shadow_test_results.json', help: 'the report' },
  { flag: 'html', kind: 'value', arg: 'FILE', help: 'the report also as one self-contained HTML page (verdicts, latency CDFs, routes, mismatches)' },
  { flag: 'ignore', kind: 'list', arg: 'PATH', help: 'a JSON path whose differences do not count (repeatable)' },
  {
    flag: 'noise-sample', kind: 'value', arg: 'RATE', default: '0',
    help: "share of requests also sent to the baseline a second time, 0..1; a field differing between baseline and canary no more often than between the baseline's two answers is noise and does not count",
  },
  { flag: 'noise-check', kind: 'switch', help: 'the same as --noise-sample 1' },
  { flag: 'relative', kind: 'value', arg: 'R', default: '0', help: 'numbers are equal within absolute + relative × |baseline| (numpy isclose)' },
  { flag: 'absolute', kind: 'value', arg: 'A', default: '1e-5', help: 'the absolute part of that tolerance (the runbook script compared 5 decimal places)' },
  { flag: 'repeat', kind: 'value', arg: 'N', default: '1', help: 'send each request N times, to both backends each time, for enough latencies to judge a p99 by' },
  { flag: 'min-p99-difference', kind: 'value', arg: 'DURATION', default: DEFAULT_MIN_P99_DIFFERENCE, help: "a slower canary p99 fails only this far over the baseline's too (the rollout's floor; 0 for none)" },
  { flag: 'strict', kind: 'switch', help: 'stop at a malformed line (exit 2) instead of skipping it' },
] as const satisfies readonly Flag[];

export const REPLAY_COMMAND: Command = {
  name: 'replay',
  summary: 'recorded requests to a baseline and a canary, compared',
  usage: ['--baseline URL --canary URL [options] FILE...'],
  about: "The runbook's shadow_replay_test.py, here: each recorded request to both backends, answers compared.",
  flags: REPLAY_FLAGS,
  takesArguments: true,
  notes: wrapped('Exit codes: 0 every Phase 1 criterion passes, 1 one fails or Ctrl-C, 2 bad usage, 3 none fails but one is inconclusive (a p99 from fewer than 100 requests a side).', 80),
};
