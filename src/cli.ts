#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { startApp } from './app.js';
import { isWorker, runWorker } from './cluster.js';
import { buildConfig, readConfigFile, type Config, type RawSettings } from './config.js';
import { runDemo } from './demo.js';
import { InputError } from './input-error.js';
import { createLogger } from './log.js';
import { weightsCommand } from './weights-cli.js';

const USAGE = `drum-splitter — canary traffic splitter for DRUM model servers

Usage:
  drum-splitter serve [options]     run the proxy
  drum-splitter demo [--listen H:P] two built-in DRUM stand-ins behind the proxy at 5%
  drum-splitter weights get|history            read the live split, or its audit trail
  drum-splitter weights set NAME=PERCENT ...   change it (the baseline takes the rest)
  drum-splitter weights rollback               every canary to 0%, at once
  drum-splitter --help | --version

Options for serve (a --config file takes the same settings; flags win):
  --listen HOST:PORT         traffic address (default 0.0.0.0:8000; [::]:PORT for dual-stack)
  --upstream NAME=URL        an upstream, repeatable; the first is the baseline, which takes
                             the rest of the traffic (default flask=http://127.0.0.1:8080
                             and fastapi=http://127.0.0.1:8081)
  --weight NAME=PERCENT      an upstream's share, repeatable, up to two decimals; listed order
                             is split_clients line order (default: 100% to the baseline)
  --key TEMPLATE             split key, nginx variables (default \${remote_addr}\${uri});
                             $remote_addr $uri $request_uri $args $host $arg_NAME
                             $http_NAME $cookie_NAME
  --config FILE              YAML file with these settings (listen, upstreams, weights, key,
                             trustProxy, upstreamHeader, overrideHeader, timeout, bodyLimit,
                             bufferMemory, bufferDir, requestBuffering, responseBuffering,
                             drainTimeout, upstreamKeepAlive, accessLog, logLevel, admin, adminTokenFile,
                             state, pollInterval, metricsOnTraffic, record, recordSample,
                             recordPaths, recordMaxBody, recordRotateBytes, recordQueue,
                             recordMemory, recordResponses, recordRedact, recordNoRedact, workers); watched, its
                             weights re-applied when they change
  --trust-proxy              take $remote_addr from the last X-Forwarded-For entry
  --no-upstream-header       do not add X-Drum-Splitter-Upstream to responses
  --override-header NAME     header that forces a request to the upstream it names (off)
  --timeout DURATION         upstream response timeout, e.g. 120s (default 120s)
  --body-limit SIZE          largest request body, e.g. 100MB (default 100MB)
  --buffer-memory SIZE       per request and per answer, bytes held in memory while
                             buffering; the rest goes to a temp file (default 64KB)
  --buffer-dir DIR           where those temp files go, 0600, removed when the exchange
                             ends (default: the system's temp directory)
  --no-request-buffering     stream request bodies upstream as they arrive instead of
                             reading them whole before connecting (per upstream: config)
  --no-response-buffering    let a slow client slow the upstream down instead of holding
                             its answer for the client (per upstream: config)
  --drain-timeout DURATION   on SIGTERM, how long requests in flight may finish before
                             they are cut (default: --timeout)
  --upstream-keepalive DUR   idle upstream connection lifetime (default 1s; keep it below
                             the upstream's own keep-alive, 2s for gunicorn)
  --access-log               log every request as a JSON line
  --log-level LEVEL          fatal|error|warn|info|debug|trace|silent (default info)
  --admin HOST:PORT          admin API address (default 127.0.0.1:9901); off loopback it
                             needs a token
  --admin-token-file FILE    admin tokens, NAME:TOKEN per line (or DRUM_SPLITTER_ADMIN_TOKEN)
  --state FILE               keep the weights and their audit trail here across restarts
  --poll-interval DURATION   how often upstreams' /ping and /stats/ are read (default 15s)
  --metrics-on-traffic       also answer GET /metrics on the traffic port (off; it is always
                             on the admin API; only with --workers 1)
  --workers N|auto           traffic worker processes (default 1: this process serves
                             traffic; auto: one per CPU); weights, recording and metrics
                             stay one, in the primary
  --record FILE              record sampled requests to this JSONL file, for the seed's
                             replay script (switchable at runtime: PUT /recording)
  --record-sample RATE       share of requests recorded, 0..1 (default 0.01)
  --record-paths LIST        routes recorded, comma-separated (default DRUM's prediction
                             routes: /predict/ /predictions/ /transform/ /invocations
                             /predictUnstructured/ /predictionsUnstructured/)
  --record-max-body SIZE     body bytes kept per record (default 10MB); a bigger body is
                             forwarded whole and recorded truncated
  --record-rotate-bytes SIZE start FILE.1, FILE.2, ... past this size (default: never)
  --record-queue SIZE        records waiting for the disk before new ones are dropped
                             (default 64MB; at least one record of the largest body)
  --record-memory SIZE       bodies held in memory at once for records in flight; past
                             it a request passes unrecorded (default: --record-queue / 4)
  --record-responses         also record each response's status and body (capped)
  --record-redact LIST       more headers to record as "[REDACTED]", comma-separated
                             (always: Authorization, Cookie, X-Api-Key, DataRobot keys...)
  --record-no-redact         do not redact the default headers (only --record-redact ones)

Options for weights:
  --admin URL                the admin API (default http://127.0.0.1:9901)
  --token TOKEN              bearer token for writes (default DRUM_SPLITTER_ADMIN_TOKEN)
  --reason TEXT              why, for the audit trail (set, rollback)

Environment (at start; wins over flags, the config file and the state file):
  MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE=NAME          100% to that upstream
  MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT=N  the canary's share (plain or DRUM JSON)
  DRUM_RECORD_REQUESTS=true|false    recording on or off (on without --record writes
                                     /var/log/drum/recorded_requests.jsonl)
  DRUM_RECORD_SAMPLE_RATE=RATE       the recorded share, 0..1

Exit codes: serve: 0 stopped cleanly, 1 could not run (e.g. address in use), 2 bad flag,
config or environment, 3 stopped but cut requests still in flight at --drain-timeout. weights: 0 done, 1 admin API unreachable or failing, 2 bad usage or
request rejected, 3 unauthorized.`;

/** serve's exit code when shutdown had to cut requests still in flight. */
const EXIT_CUT = 3;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  listen: { type: 'string' },
  upstream: { type: 'string', multiple: true },
  weight: { type: 'string', multiple: true },
  key: { type: 'string' },
  config: { type: 'string' },
  'trust-proxy': { type: 'boolean' },
  'no-upstream-header': { type: 'boolean' },
  'override-header': { type: 'string' },
  timeout: { type: 'string' },
  'body-limit': { type: 'string' },
  'buffer-memory': { type: 'string' },
  'buffer-dir': { type: 'string' },
  'no-request-buffering': { type: 'boolean' },
  'no-response-buffering': { type: 'boolean' },
  'drain-timeout': { type: 'string' },
  'upstream-keepalive': { type: 'string' },
  'access-log': { type: 'boolean' },
  'log-level': { type: 'string' },
  admin: { type: 'string' },
  'admin-token-file': { type: 'string' },
  state: { type: 'string' },
  'poll-interval': { type: 'string' },
  'metrics-on-traffic': { type: 'boolean' },
  workers: { type: 'string' },
  record: { type: 'string' },
  'record-sample': { type: 'string' },
  'record-paths': { type: 'string', multiple: true },
  'record-max-body': { type: 'string' },
  'record-rotate-bytes': { type: 'string' },
  'record-queue': { type: 'string' },
  'record-memory': { type: 'string' },
  'record-responses': { type: 'boolean' },
  'record-redact': { type: 'string', multiple: true },
  'record-no-redact': { type: 'boolean' },
  token: { type: 'string' },
  reason: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** Flags as settings; only those given, so they override the file key by key. */
function flagSettings(v: Values): RawSettings {
  const s: RawSettings = {};
  if (v.listen !== undefined) s.listen = v.listen;
  if (v.upstream !== undefined) s.upstreams = v.upstream;
  if (v.weight !== undefined) s.weights = v.weight;
  if (v.key !== undefined) s.key = v.key;
  if (v['trust-proxy'] !== undefined) s.trustProxy = v['trust-proxy'];
  if (v['no-upstream-header'] !== undefined) s.upstreamHeader = !v['no-upstream-header'];
  if (v['override-header'] !== undefined) s.overrideHeader = v['override-header'];
  if (v.timeout !== undefined) s.timeout = v.timeout;
  if (v['body-limit'] !== undefined) s.bodyLimit = v['body-limit'];
  if (v['buffer-memory'] !== undefined) s.bufferMemory = v['buffer-memory'];
  if (v['buffer-dir'] !== undefined) s.bufferDir = v['buffer-dir'];
  if (v['no-request-buffering'] !== undefined) s.requestBuffering = !v['no-request-buffering'];
  if (v['no-response-buffering'] !== undefined) s.responseBuffering = !v['no-response-buffering'];
  if (v['drain-timeout'] !== undefined) s.drainTimeout = v['drain-timeout'];
  if (v['upstream-keepalive'] !== undefined) s.upstreamKeepAlive = v['upstream-keepalive'];
  if (v['access-log'] !== undefined) s.accessLog = v['access-log'];
  if (v['log-level'] !== undefined) s.logLevel = v['log-level'];
  if (v.admin !== undefined) s.admin = v.admin;
  if (v['admin-token-file'] !== undefined) s.adminTokenFile = v['admin-token-file'];
  if (v.state !== undefined) s.state = v.state;
  if (v['poll-interval'] !== undefined) s.pollInterval = v['poll-interval'];
  if (v['metrics-on-traffic'] !== undefined) s.metricsOnTraffic = v['metrics-on-traffic'];
  if (v.workers !== undefined) s.workers = v.workers;
  if (v.record !== undefined) s.record = v.record;
  if (v['record-sample'] !== undefined) s.recordSample = v['record-sample'];
  if (v['record-paths'] !== undefined) s.recordPaths = v['record-paths'];
  if (v['record-max-body'] !== undefined) s.recordMaxBody = v['record-max-body'];
  if (v['record-rotate-bytes'] !== undefined) s.recordRotateBytes = v['record-rotate-bytes'];
  if (v['record-queue'] !== undefined) s.recordQueue = v['record-queue'];
  if (v['record-memory'] !== undefined) s.recordMemory = v['record-memory'];
  if (v['record-responses'] !== undefined) s.recordResponses = v['record-responses'];
  if (v['record-redact'] !== undefined) s.recordRedact = v['record-redact'];
  if (v['record-no-redact'] !== undefined) s.recordNoRedact = v['record-no-redact'];
  return s;
}

/** The config file's own settings (watched later) and the config with flags applied. */
export function configFromArgs(v: Values): { config: Config; file: RawSettings } {
  const file = v.config === undefined ? {} : readConfigFile(v.config);
  return { config: buildConfig({ ...file, ...flagSettings(v) }), file };
}

function version(): string {
  // The package root is one level up from src/cli.ts (run from source), two from dist/src/cli.js.
  const path = ['../package.json', '../../package.json']
    .map((p) => new URL(p, import.meta.url))
    .find((u) => existsSync(u))!;
  const pkg = JSON.parse(readFileSync(path, 'utf8')) as { version: string };
  return pkg.version;
}

async function serve(v: Values): Promise<void> {
  // A worker takes the primary's config: the file may have been edited since the primary read it.
  if (isWorker()) return runWorker();
  const { config, file } = configFromArgs(v);
  const log = createLogger(config.logLevel);
  const app = await startApp(config, {
    env: process.env,
    log,
    ...(v.config === undefined ? {} : { configFile: { path: v.config, settings: file } }),
  });
  const { address, port } = app.proxy.address;
  log.info(
    {
      listen: `${address}:${port}`,
      admin: `${app.adminAddress.address}:${app.adminAddress.port}`,
      upstreams: Object.fromEntries(config.upstreams.map((u) => [u.name, u.url.href])),
      baseline: config.upstreams[0]!.name,
      weights: app.store.view().weights,
      source: app.store.view().source,
      recording: app.proxy.recording.enabled ? { file: app.proxy.recording.file, sampleRate: app.proxy.recording.sampleRate } : 'off',
      workers: config.workers,
    },
    'listening',
  );
  const stop = (signal: string): void => {
    log.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, 'shutting down');
    void app.close().then((cut) => {
      log.info({ cut }, cut === 0 ? 'stopped: every request in flight was answered' : `stopped: ${cut} requests cut at the drain timeout`);
      process.exit(cut === 0 ? 0 : EXIT_CUT);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new InputError((err as Error).message.split('\n')[0]!);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    console.log(version());
    return 0;
  }
  const [command, ...extra] = positionals;
  if (values.help || command === undefined || command === 'help') {
    console.log(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (command === 'weights') {
    const [sub, ...args] = extra;
    return weightsCommand(sub, args, {
      admin: values.admin ?? 'http://127.0.0.1:9901',
      token: values.token ?? process.env.DRUM_SPLITTER_ADMIN_TOKEN,
      reason: values.reason,
    });
  }
  if (extra.length > 0) throw new InputError(`unexpected argument "${extra[0]}"`);
  if (command === 'serve') {
    await serve(values);
    return -1; // keeps running until a signal
  }
  if (command === 'demo') {
    await runDemo(values.listen ?? '127.0.0.1:8000');
    return -1;
  }
  throw new InputError(`unknown command "${command}" (try serve, demo, weights or --help)`);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof InputError) {
      console.error(`drum-splitter: ${err.message}`);
      process.exitCode = 2;
    } else {
      const e = err as NodeJS.ErrnoException;
      console.error(`drum-splitter: ${e.code === 'EADDRINUSE' ? `address in use: ${e.message}` : e.message}`);
      process.exitCode = 1;
    }
  },
);
