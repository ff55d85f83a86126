// What the CLI needs of replay before any command runs: its flags (for parsing every command
// line) and its part of --help. Apart from command.ts so that `serve` does not load replay itself
// (its undici pool, the progress bar, the HTML report).
import type { ParseArgsConfig } from 'node:util';
import { usageLines } from '../config/settings.js';

/** The flags of `drum-splitter replay`; the seed's spellings (--flask-url, --fastapi-url) and ours. */
export const REPLAY_OPTIONS = {
  'flask-url': { type: 'string' },
  baseline: { type: 'string' },
  'fastapi-url': { type: 'string' },
  canary: { type: 'string' },
  'requests-file': { type: 'string', multiple: true },
  concurrency: { type: 'string' },
  output: { type: 'string' },
  html: { type: 'string' },
  timeout: { type: 'string' },
  rate: { type: 'string' },
  ignore: { type: 'string', multiple: true },
  'noise-check': { type: 'boolean' },
  'noise-sample': { type: 'string' },
  relative: { type: 'string' },
  absolute: { type: 'string' },
  repeat: { type: 'string' },
  'min-p99-difference': { type: 'string' },
  strict: { type: 'boolean' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

/** The replay part of --help: what it does, then a line per flag (every flag at a line's start, as for the other commands). */
export const REPLAY_USAGE: readonly string[] = [
  "  the seed's shadow_replay_test.py: each recorded request to both backends, answers compared",
  usageLines([
    { flag: 'baseline', arg: 'URL', help: ['the baseline (required; the seed calls it --flask-url)'] },
    { flag: 'flask-url', arg: 'URL', help: ['the same'] },
    { flag: 'canary', arg: 'URL', help: ['the canary (required; the seed calls it --fastapi-url)'] },
    { flag: 'fastapi-url', arg: 'URL', help: ['the same'] },
    { flag: 'requests-file', arg: 'FILE', help: ['a recording (repeatable; or FILEs as arguments, e.g.', 'rec.jsonl rec.jsonl.1 rec.jsonl.2)'] },
    { flag: 'concurrency', arg: 'N', help: ['requests in flight to each backend (default 10)'] },
    { flag: 'rate', arg: 'N', help: ['requests started per second (default: no limit)'] },
    { flag: 'timeout', arg: 'DURATION', help: ['per request (default 30s)'] },
    { flag: 'output', arg: 'FILE', help: ['the report (default shadow_test_results.json)'] },
    { flag: 'html', arg: 'FILE', help: ['the report also as one self-contained HTML page (verdicts,', 'latency CDFs, routes, mismatches)'] },
    { flag: 'ignore', arg: 'PATH', help: ['a JSON path whose differences do not count (repeatable)'] },
    { flag: 'noise-sample', arg: 'RATE', help: ['share of requests also sent to the baseline a second time,', '0..1 (default 0); a field differing between baseline and', "canary no more often than between the baseline's two answers", 'is noise and does not count'] },
    { flag: 'noise-check', help: ['the same as --noise-sample 1'] },
    { flag: 'relative', arg: 'R', help: ['numbers are equal within absolute + relative × |baseline|', '(numpy isclose; default 0)'] },
    { flag: 'absolute', arg: 'A', help: ['(default 1e-5: the seed compared 5 places)'] },
    { flag: 'repeat', arg: 'N', help: ['send each request N times (default 1), to both backends', 'each time, for enough latencies to judge a p99 by'] },
    { flag: 'min-p99-difference', arg: 'DUR', help: ["a slower canary p99 fails only this far over the baseline's", "too (default 5ms, the rollout's; 0 for none)"] },
    { flag: 'strict', help: ['stop at a malformed line (exit 2) instead of skipping it'] },
  ]),
  '  Exit: 0 every Phase 1 criterion passes, 1 one fails or Ctrl-C, 2 bad usage, 3 none fails',
  '  but one is inconclusive (a p99 from fewer than 100 requests a side)',
];
