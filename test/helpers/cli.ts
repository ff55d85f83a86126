import type { ChildProcess } from 'node:child_process';
import type { Test } from 'tap';
import { spawnCli, waitForLine, type CliResult } from './net.js';

/** What `serve` logs once it listens (src/cli.ts). */
export interface Listening {
  listen: string;
  admin: string;
  upstreams: Record<string, string>;
  baseline: string;
  weights: Record<string, number>;
  recording: unknown;
}

/** A spawned `serve`, its output collected. */
export interface Served {
  child(): ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The 'listening' log line, parsed. */
  listening: Promise<Listening>;
  /** Exit code and signal, once the process has ended and its output is read. */
  exited(): Promise<[number | null, NodeJS.Signals | null]>;
}

type Slot = <T>(job: () => Promise<T>) => Promise<T>;

/**
 * `serve ARGS` with an ephemeral admin port (concurrent runs do not collide on 9901), started
 * through `slot` (a limiter), killed on t's teardown if still running.
 */
export function serveCli(t: Test, args: string[], env: NodeJS.ProcessEnv = {}, slot: Slot = (job) => job()): Served {
  let child: ChildProcess | undefined;
  let stdout = '';
  let stderr = '';
  let exited!: ReturnType<Served['exited']>;
  const listening = slot(async () => {
    child = spawnCli(['serve', '--admin', '127.0.0.1:0', ...args], env);
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    exited = new Promise((r) => child!.on('close', (code, signal) => r([code, signal])));
    return JSON.parse(await waitForLine(child, /"msg":"listening"/)) as Listening;
  });
  listening.catch(() => {}); // reported by the test that awaits it
  t.teardown(() => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child: () => child!, stdout: () => stdout, stderr: () => stderr, listening, exited: () => exited };
}

/** The JSON log lines printed so far with this msg. */
export function logLines(s: Served, msg: string): Record<string, unknown>[] {
  return s
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg);
}

/** An exit-2 input error: nothing on stdout, exactly one stderr line, matching `message`. */
export function assertInputError(t: Test, r: CliResult, message: RegExp, name?: string): void {
  const at = name === undefined ? '' : `${name}: `;
  t.equal(r.code, 2, `${at}exit code 2`);
  t.equal(r.stdout, '', `${at}nothing on stdout`);
  t.match(r.stderr, /^drum-splitter: [^\n]+\n$/, `${at}one line`);
  t.match(r.stderr, message, `${at}says what is wrong`);
}
