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

/** `host:port` for a URL or an nginx listen: IPv6 literals need brackets. */
export const hostPort = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;

function listenOnce(host: string, port: number): Promise<number | null> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(null));
    s.listen(port, host, () => {
      const a = s.address();
      const p = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(p));
    });
  });
}

/**
 * A port free on every one of `hosts`: the kernel picks it on the first, the rest are
 * checked, then all are released. Racy in theory, fine on a quiet box.
 */
export async function freePort(hosts: readonly string[] = ['127.0.0.1']): Promise<number> {
  const [first = '127.0.0.1', ...rest] = hosts;
  for (let i = 0; i < 50; i++) {
    const p = await listenOnce(first, 0);
    if (p !== null && (await Promise.all(rest.map((h) => listenOnce(h, p)))).every((r) => r !== null)) return p;
  }
  throw new Error(`no port free on ${hosts.join(' and ')}`);
}

function tcpOk(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect(port, host);
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
  const u = new URL(url);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1'); // [::1] -> ::1 for net.connect
  const port = Number(u.port);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = (await tcpOk(host, port)) ? await httpStatus(url) : null;
    // Checked after the probe, so a dead child cannot pass because something else holds its port.
    if (child && child.proc.pid === undefined) throw new Error(`failed to spawn:\n${child.logTail()}`);
    if (child && (child.proc.exitCode !== null || child.proc.signalCode !== null)) {
      throw new Error(`exited (${child.proc.exitCode ?? child.proc.signalCode}) before ready:\n${child.logTail()}`);
    }
    if (st !== null) return st;
    if (Date.now() > deadline) throw new Error(`not ready within ${timeoutMs} ms: ${url}\n${child?.logTail() ?? ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
