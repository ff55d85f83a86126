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
    { flag: 'noise-check', help: ['send each request to the baseline twice; fields that differ', 'between those two do not count'] },
    { flag: 'strict', help: ['stop at a malformed line (exit 2) instead of skipping it'] },
  ]),
  '  Exit: 0 every Phase 1 criterion passes, 1 one fails or Ctrl-C, 2 bad usage',
];
