// Child-process plumbing shared by the benches: every child is tracked so that
// an error, Ctrl-C or a plain exit never leaves a server holding a port.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function killAllSync(): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  live.clear();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/** Track a child spawned elsewhere (e.g. wrk) so cleanup kills it too. */
export function track(p: ChildProcess): void {
  live.add(p);
  p.once('exit', () => live.delete(p));
}

let hooked = false;
/** Install once: 'exit' covers normal ends and thrown errors; signals need an explicit exit. */
export function installCleanup(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping children\n`);
      killAllSync();
      process.exit(130);
    });
  }
}

/** A temp dir removed on stop or, at the latest, on process exit. */
export function makeTempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

export function removeTempDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

export interface Child {
  proc: ChildProcess;
  /** Combined stdout+stderr, written by the child straight to a file so the bench process spends no CPU reading it. */
  logPath: string;
  logTail(max?: number): string;
  stop(): Promise<void>;
}

export function startChild(cmd: string, args: string[], opts: SpawnOptions & { logDir: string; name: string }): Child {
  const logPath = join(opts.logDir, `${opts.name}.log`);
  const fd = openSync(logPath, 'a');
  const proc = spawn(cmd, args, { ...opts, stdio: ['ignore', fd, fd] });
  closeSync(fd); // the child holds its own copy
  track(proc);
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  proc.once('error', () => live.delete(proc));
  return {
    proc,
    logPath,
    logTail(max = 2000) {
      try { return readFileSync(logPath, 'utf8').slice(-max); } catch { return ''; }
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Ask the kernel for a free loopback port. Racy in theory, fine on a quiet bench box. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

function tcpOk(port: number): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect(port, '127.0.0.1');
    sock.once('connect', () => { sock.destroy(); res(true); });
    sock.once('error', () => res(false));
  });
}

/** Any HTTP status counts as "answers": readiness is about the listener, not about routing. */
function httpStatus(url: string): Promise<number | null> {
  return new Promise((res) => {
    const req = request(url, { agent: false, timeout: 1000 }, (r) => { r.resume(); r.on('end', () => res(r.statusCode ?? null)); });
    req.once('timeout', () => req.destroy());
    req.once('error', () => res(null));
    req.end();
  });
}

/** Poll until the port accepts TCP and GET url answers; fail fast if the child dies first. */
export async function waitReady(url: string, child?: Child, timeoutMs = 10_000): Promise<number> {
  const port = Number(new URL(url).port);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.proc.pid === undefined) throw new Error(`failed to spawn:\n${child.logTail()}`);
    if (child && (child.proc.exitCode !== null || child.proc.signalCode !== null)) {
      throw new Error(`exited (${child.proc.exitCode ?? child.proc.signalCode}) before ready:\n${child.logTail()}`);
    }
    if (await tcpOk(port)) {
      const st = await httpStatus(url);
      if (st !== null) return st;
    }
    if (Date.now() > deadline) throw new Error(`not ready within ${timeoutMs} ms: ${url}\n${child?.logTail() ?? ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
