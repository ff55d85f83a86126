// Throw-away nginx instances for the bench and scripts/nginx-golden.ts: one foreground
// process (no master, 1 worker), with its own prefix dir so it never touches
// /var/log/nginx or /var/lib/nginx (the Debian build's compiled-in paths may not be writable).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostPort, makeTempDir, removeTempDir, startChild, waitReady } from './proc.js';

export function findNginx(): string | null {
  // NGINX_BIN is authoritative when set (NGINX_BIN=none exercises the no-nginx path);
  // otherwise probe PATH and the usual places, as /usr/sbin is often missing from a non-root PATH.
  const env = process.env.NGINX_BIN;
  const candidates = env ? [env] : ['nginx', '/usr/sbin/nginx', '/usr/local/nginx/sbin/nginx', '/usr/local/sbin/nginx'];
  return candidates.find((c) => !spawnSync(c, ['-v'], { stdio: 'ignore' }).error) ?? null;
}

/** The bare version ("1.22.1"), or null when `bin -v` does not say one. */
export function nginxVersion(bin: string): string | null {
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return /nginx\/(\S+)/.exec(`${r.stderr}${r.stdout}`)?.[1] ?? null;
}

/**
 * keepalive_requests defaults to 1000 since nginx 1.19.10, while Node servers never
 * close a busy keep-alive socket; raising it keeps wrk's connections equal for all targets.
 */
const KEEPALIVE_REQUESTS = 1_000_000;

function mainConf(prefix: string, http: string, workerConnections: number): string {
  return `worker_processes 1;
daemon off;
master_process off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections ${workerConnections}; }
http {
  access_log off;
  keepalive_requests ${KEEPALIVE_REQUESTS};
  client_body_temp_path ${prefix}/tmp/client_body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
${http}
}
`;
}

const quote = (body: string): string => `'${body.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** A fixed JSON answer: a model server whose cost is ~0, so it is never the bottleneck. */
export function jsonServerHttp(port: number, body: string): string {
  return `  server {
    listen 127.0.0.1:${port};
    location / { default_type application/json; return 200 ${quote(body)}; }
  }`;
}

/**
 * The same answer, sent only once the whole request body is read (into memory), as a model
 * server does. `return` answers after the first buffer and discards the rest later, so a client
 * still sending a big body sees its answer early: undici then resets the connection and never
 * sends the rest, while nginx sends it all, and two proxies would not do the same work.
 * `mirror_request_body` is the stock way to make nginx read the body first; the answer then comes
 * from a named location, reached through the 404 of the location's (absent) files.
 */
export function bodyReadingJsonServerHttp(port: number, body: string): string {
  return `  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    client_body_buffer_size 16m;
    location / { mirror /_body; mirror_request_body on; log_not_found off; error_page 404 =200 @answer; }
    location = /_body { internal; return 204; }
    location @answer { default_type application/json; return 200 ${quote(body)}; }
  }`;
}

/**
 * What a user runs today for a canary: split_clients over two upstream blocks,
 * tuned fairly (HTTP/1.1 keep-alive to the upstream, like the Node proxies' pools).
 * A backend without `percent` becomes the "*" rest bucket, so list it last.
 */
export function splitClientsHttp(port: number, backends: Array<{ name: string; url: string; percent?: number }>, keepalive = 32): string {
  const rules = backends.map((b) => `    ${b.percent === undefined ? '*' : `${b.percent}%`} ${b.name};`).join('\n');
  const ups = backends.map((b) => `  upstream ${b.name} { server ${new URL(b.url).host}; keepalive ${keepalive}; keepalive_requests ${KEEPALIVE_REQUESTS}; }`).join('\n');
  return `  split_clients "\${remote_addr}\${uri}" $backend {
${rules}
  }
${ups}
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://$backend;
    }
  }`;
}

export interface NginxInstance { url: string; prefix: string; pid: number | undefined; stop(): Promise<void> }

export interface NginxOptions {
  /**
   * Connections (clients and upstreams together) the one worker may hold, 4,096 by default:
   * nginx allocates them all at start. The process's RLIMIT_NOFILE must match, and with
   * master_process off nginx never applies worker_rlimit_nofile: it is the parent's to raise.
   */
  workerConnections?: number;
}

/**
 * Start nginx with `http` as its http block (which holds the listen lines) and wait until
 * it answers on `port` on every one of `hosts`. `url` is on the first host.
 * The error's first line is a one-line reason, with nginx's own last log line when there is one.
 */
export async function startNginx(
  bin: string, name: string, port: number, http: string, hosts: readonly [string, ...string[]] = ['127.0.0.1'],
  opts: NginxOptions = {},
): Promise<NginxInstance> {
  const prefix = makeTempDir(`nginx-${name}-`);
  mkdirSync(join(prefix, 'tmp'));
  mkdirSync(join(prefix, 'logs')); // nginx insists on <prefix>/logs existing for its default paths
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(conf, mainConf(prefix, http, opts.workerConnections ?? 4096));
  // -e: send start-up errors to our prefix instead of the compiled-in /var/log/nginx path.
  const child = startChild(bin, ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')], { logDir: prefix, name: 'stdio' });
  const urls = hosts.map((h) => `http://${hostPort(h, port)}/`);
  const stop = async (): Promise<void> => { await child.stop(); removeTempDir(prefix); };
  try {
    for (const u of urls) await waitReady(u, child);
  } catch (e) {
    let errLog = '';
    try { errLog = readFileSync(join(prefix, 'error.log'), 'utf8').slice(-2000); } catch { /* never written */ }
    const msg = (e as Error).message;
    const last = (errLog || child.logTail()).trim().split('\n').pop() || msg.split('\n')[0];
    await stop();
    throw new Error(`nginx (${name}) failed to start: ${last}\n${msg}\n${errLog}`);
  }
  return { url: urls[0]!, prefix, pid: child.proc.pid, stop };
}
