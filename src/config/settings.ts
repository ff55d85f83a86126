/**
 * Every setting of `serve`, declared once: its config-file key, its flag and how the flag is
 * given, its default and its help. The YAML keys a file may hold, serve's flags, the mapping
 * from flags to settings, the defaults buildConfig applies and serve's --help are all derived
 * from this table; the values are checked (and defaulted) in one place, buildConfig.
 */
import type { Flag } from '../common/flags.js';
import { DEFAULT_KEY } from '../proxy/key.js';
import { DEFAULT_RECORD_PATHS } from '../record/policy.js';

export interface Setting extends Flag {
  /** The key in a config file, and the field of RawSettings. */
  readonly key: string;
}

export const SETTINGS = [
  { key: 'listen', flag: 'listen', kind: 'value', arg: 'HOST:PORT', default: '0.0.0.0:8000', help: 'traffic address; [::]:PORT for dual-stack' },
  {
    key: 'upstreams', flag: 'upstream', kind: 'list', arg: 'NAME=URL',
    // The seed's addresses: Flask/Gunicorn on 8080, FastAPI/Uvicorn on 8081.
    default: ['flask=http://127.0.0.1:8080', 'fastapi=http://127.0.0.1:8081'],
    help: 'an upstream, repeatable; the first is the baseline, which takes the rest of the traffic',
  },
  {
    key: 'weights', flag: 'weight', kind: 'list', arg: 'NAME=PERCENT',
    help: "an upstream's share, repeatable, up to two decimals; listed order is split_clients line order (default: 100% to the baseline)",
  },
  {
    key: 'key', flag: 'key', kind: 'value', arg: 'TEMPLATE', default: DEFAULT_KEY,
    help: 'split key, nginx variables: $remote_addr $uri $request_uri $args $host $arg_NAME $http_NAME $cookie_NAME',
  },
  {
    key: 'splitHash', flag: 'split-hash', kind: 'value', arg: 'HASH', default: 'murmur2',
    help: "how the key picks an upstream: murmur2, nginx's split_clients; md5-mod-100, the runbook's Option B (int(md5(key), 16) % 100 < percent: a whole deployment moves together)",
  },
  { key: 'tlsCert', flag: 'tls-cert', kind: 'value', arg: 'FILE', help: 'serve traffic over TLS with this PEM certificate (its chain after it) and --tls-key; reloaded when the files change' },
  { key: 'tlsKey', flag: 'tls-key', kind: 'value', arg: 'FILE', help: "the traffic certificate's PEM private key" },
  {
    key: 'upstreamCa', flag: 'upstream-ca', kind: 'value', arg: 'FILE',
    help: "PEM CA certificates an https upstream's certificate must chain to, instead of the system's trust (per upstream: config)",
  },
  { key: 'trustProxy', flag: 'trust-proxy', kind: 'switch', help: 'take $remote_addr from the last X-Forwarded-For entry' },
  { key: 'upstreamHeader', flag: 'no-upstream-header', kind: 'off', help: 'do not add X-Drum-Splitter-Upstream to responses (nor to our 502 and 504)' },
  { key: 'overrideHeader', flag: 'override-header', kind: 'value', arg: 'NAME', help: 'header that forces a request to the upstream it names (off)' },
  // gunicorn's default worker timeout
  {
    key: 'fallback', flag: 'fallback', kind: 'value', arg: 'MODE', default: 'connect',
    help: "when an upstream other than the baseline fails a request, send it to the baseline once: off; connect, if not a byte of it was written (refused, reset while connecting); safe, also a GET/HEAD/OPTIONS with no answer yet",
  },
  { key: 'timeout', flag: 'timeout', kind: 'value', arg: 'DURATION', default: '120s', help: 'upstream response timeout, e.g. 30s or 2m' },
  { key: 'bodyLimit', flag: 'body-limit', kind: 'value', arg: 'SIZE', default: '100MB', help: 'largest request body, e.g. 1GB' },
  {
    key: 'bufferMemory', flag: 'buffer-memory', kind: 'value', arg: 'SIZE',
    default: '64KB', // per exchange and direction; nginx's proxy buffers are 8 × 8 KB
    help: 'per request and per answer, bytes held in memory while buffering; the rest goes to a temp file',
  },
  {
    key: 'bufferDir', flag: 'buffer-dir', kind: 'value', arg: 'DIR',
    help: "where those temp files go, 0600, removed when the exchange ends (default: the system's temp directory)",
  },
  {
    key: 'requestBuffering', flag: 'no-request-buffering', kind: 'off',
    help: 'stream request bodies upstream as they arrive instead of reading them whole before connecting (per upstream: config)',
  },
  {
    key: 'responseBuffering', flag: 'no-response-buffering', kind: 'off',
    help: 'let a slow client slow the upstream down instead of holding its answer for the client (per upstream: config)',
  },
  {
    key: 'drainTimeout', flag: 'drain-timeout', kind: 'value', arg: 'DURATION',
    help: 'on SIGTERM, how long requests in flight may finish before they are cut (default: --timeout)',
  },
  {
    key: 'upstreamKeepAlive', flag: 'upstream-keepalive', kind: 'value', arg: 'DUR',
    // gunicorn closes idle keep-alive connections after 2 s; reusing one it is closing fails
    // the request once it is written (not sent again, --fallback or not), so we let go of idle
    // connections first.
    default: '1s',
    help: "idle upstream connection lifetime; keep it below the upstream's own keep-alive, 2s for gunicorn",
  },
  { key: 'accessLog', flag: 'access-log', kind: 'switch', help: 'log every request as a JSON line' },
  { key: 'logLevel', flag: 'log-level', kind: 'value', arg: 'LEVEL', default: 'info', help: 'fatal|error|warn|info|debug|trace|silent' },
  {
    key: 'admin', flag: 'admin', kind: 'value', arg: 'HOST:PORT', default: '127.0.0.1:9901',
    help: 'admin API address; off loopback it needs a token',
  },
  { key: 'adminTlsCert', flag: 'admin-tls-cert', kind: 'value', arg: 'FILE', help: 'serve the admin API over TLS with this PEM certificate and --admin-tls-key; reloaded when the files change' },
  { key: 'adminTlsKey', flag: 'admin-tls-key', kind: 'value', arg: 'FILE', help: "the admin certificate's PEM private key" },
  { key: 'adminTokenFile', flag: 'admin-token-file', kind: 'value', arg: 'FILE', help: 'admin tokens, NAME:TOKEN per line (or DRUM_SPLITTER_ADMIN_TOKEN)' },
  { key: 'state', flag: 'state', kind: 'value', arg: 'FILE', help: 'keep the weights, the cohort rules and their audit trails here across restarts (the rules in FILE with .routes.json)' },
  { key: 'pollInterval', flag: 'poll-interval', kind: 'value', arg: 'DURATION', default: '15s', help: "how often upstreams' /ping and /stats/ are read" },
  {
    key: 'metricsOnTraffic', flag: 'metrics-on-traffic', kind: 'switch',
    help: 'also answer GET /metrics on the traffic port (off; it is always on the admin API; only with --workers 1)',
  },
  {
    key: 'workers', flag: 'workers', kind: 'value', arg: 'N|auto', default: '1',
    help: 'traffic worker processes; 1: this process serves traffic; auto: one per CPU; weights, recording and metrics stay one, in the primary',
  },
  {
    key: 'record', flag: 'record', kind: 'value', arg: 'FILE',
    help: "record sampled requests to this JSONL file, for drum-splitter replay or the runbook's replay script (switchable at runtime: PUT /recording)",
  },
  // the seed's DRUM_RECORD_SAMPLE_RATE
  { key: 'recordSample', flag: 'record-sample', kind: 'value', arg: 'RATE', default: '0.01', help: 'share of requests recorded, 0..1' },
  {
    key: 'recordPaths', flag: 'record-paths', kind: 'list', arg: 'LIST', default: DEFAULT_RECORD_PATHS,
    help: "routes recorded, comma-separated: DRUM's prediction routes",
  },
  {
    key: 'recordMaxBody', flag: 'record-max-body', kind: 'value', arg: 'SIZE', default: '10MB',
    help: 'body bytes kept per record; a bigger body is forwarded whole and recorded truncated',
  },
  { key: 'recordRotateBytes', flag: 'record-rotate-bytes', kind: 'value', arg: 'SIZE', help: 'start FILE.1, FILE.2, ... past this size (default: never)' },
  {
    key: 'recordQueue', flag: 'record-queue', kind: 'value', arg: 'SIZE',
    default: '64MB', // three of the longest lines the default cap allows (hex: 2 bytes a byte)
    help: 'records waiting for the disk before new ones are dropped; at least one record of the largest body',
  },
  {
    key: 'recordMemory', flag: 'record-memory', kind: 'value', arg: 'SIZE',
    help: 'bodies held in memory at once for records in flight; past it a request passes unrecorded (default: --record-queue / 4)',
  },
  { key: 'recordResponses', flag: 'record-responses', kind: 'switch', help: "also record each response's status and body (capped)" },
  {
    key: 'recordRedact', flag: 'record-redact', kind: 'list', arg: 'LIST',
    help: 'more headers to record as "[REDACTED]", comma-separated (always: Authorization, Cookie, X-Api-Key, DataRobot keys...)',
  },
  { key: 'recordNoRedact', flag: 'record-no-redact', kind: 'switch', help: 'do not redact the default headers (only --record-redact ones)' },
  {
    key: 'shadowSample', flag: 'shadow-sample', kind: 'value', arg: 'RATE', default: '0',
    help: "share of the baseline's requests also sent to the shadow upstream and compared, 0..1; 0 is off (switchable at runtime: PUT /shadow)",
  },
  { key: 'shadow', flag: 'shadow', kind: 'value', arg: 'NAME', help: 'the shadow upstream (default: the second upstream, the canary)' },
  {
    key: 'shadowPaths', flag: 'shadow-paths', kind: 'list', arg: 'LIST',
    help: 'routes shadowed, comma-separated (default: the record paths; shadow only routes without side effects)',
  },
  { key: 'shadowMaxInflight', flag: 'shadow-max-inflight', kind: 'value', arg: 'N', default: '64', help: 'shadow copies in flight at once; past it one is dropped' },
  {
    key: 'shadowMaxBody', flag: 'shadow-max-body', kind: 'value', arg: 'SIZE',
    default: '1MB', // with 64 in flight, at most 192 MB of bodies held (request and two answers each)
    help: 'body bytes kept per side of a copy; a copy with a larger request or answer is dropped',
  },
  {
    key: 'shadowTimeout', flag: 'shadow-timeout', kind: 'value', arg: 'DURATION',
    help: "a copy's whole limit, from sending it to the answer's last byte; past it the copy is an error (timeout) and its slot freed (default: --timeout, at most 10s)",
  },
  { key: 'shadowLog', flag: 'shadow-log', kind: 'value', arg: 'FILE', help: 'write each mismatch (request, both answers, diff) as JSONL, 0600' },
  { key: 'shadowIgnore', flag: 'shadow-ignore', kind: 'list', arg: 'LIST', help: 'JSON paths whose differences do not count, comma-separated' },
  {
    key: 'shadowNoiseSample', flag: 'shadow-noise-sample', kind: 'value', arg: 'RATE', default: '0',
    help: "share of copies also sent to the baseline a second time, 0..1; a field differing no more often than the baseline's two answers do is noise and does not count",
  },
  { key: 'shadowRelative', flag: 'shadow-relative', kind: 'value', arg: 'R', default: '0', help: 'numbers are equal within absolute + relative × |baseline|' },
  { key: 'shadowAbsolute', flag: 'shadow-absolute', kind: 'value', arg: 'A', default: '1e-5', help: 'the absolute part of that tolerance (the runbook script compared 5 decimal places)' },
] as const satisfies readonly Setting[];

/** Settings only a config file gives: structures no flag could carry. */
export const FILE_ONLY = [
  // The canary controller's plan (src/rollout/plan.ts).
  'rollout',
  // { key, hash }: another way to write key and splitHash (config.ts: unfoldSplit).
  'split',
  // Cohort rules, checked before the split (weights/routes.ts).
  'routes',
] as const;

export type SettingKey = (typeof SETTINGS)[number]['key'] | (typeof FILE_ONLY)[number];

/** Settings as read from a file or flags, before they are checked: any of the table's keys. */
export type RawSettings = { [K in SettingKey]?: unknown };

export const SETTING_KEYS: readonly SettingKey[] = [...SETTINGS.map((s) => s.key), ...FILE_ONLY];

/** The settings the given flag values (by flag name, as parseArgs returns them) stand for; only those given. */
export function settingsFromFlags(values: Readonly<Record<string, unknown>>): RawSettings {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS as readonly Setting[]) {
    const v = values[s.flag];
    if (v !== undefined) out[s.key] = s.kind === 'off' ? !v : v;
  }
  return out as RawSettings;
}

type WithDefault = Extract<(typeof SETTINGS)[number], { readonly default: unknown }>;

/** Each setting's default by key, from the table: what buildConfig uses when neither a flag nor the file gives it. */
export const SETTING_DEFAULTS = Object.fromEntries((SETTINGS as readonly Setting[]).flatMap((s) => (s.default === undefined ? [] : [[s.key, s.default]]))) as {
  readonly [S in WithDefault as S['key']]: S['default'];
};

/** --config: the keys a file may hold, listed. */
const CONFIG_FLAG: Flag = {
  flag: 'config', kind: 'value', arg: 'FILE',
  help: `YAML file with these settings (${SETTING_KEYS.join(', ')}); watched, its weights and cohort rules re-applied when they change`,
};

/** serve's flags: each setting's, --config after the first four. */
export const SERVE_FLAGS: readonly Flag[] = [...SETTINGS.slice(0, 4), CONFIG_FLAG, ...SETTINGS.slice(4)];
