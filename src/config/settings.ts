/**
 * Every setting of `serve`, declared once: its config-file key, its flag and how the flag is
 * given, and its help. The YAML keys a file may hold, the flags parseArgs takes, the mapping
 * from flags to settings and the usage text are all derived from this table; the values are
 * checked (and defaulted) in one place, buildConfig.
 */

/** How a flag gives its setting: a value, a repeatable value, a switch, or a switch that turns the setting off. */
export type FlagKind = 'value' | 'list' | 'switch' | 'off';

export interface Setting {
  /** The key in a config file, and the field of RawSettings. */
  readonly key: string;
  /** The flag, without its dashes. */
  readonly flag: string;
  readonly kind: FlagKind;
  /** The value's name in the usage text, for 'value' and 'list' flags. */
  readonly arg?: string;
  /** The usage text, a line each. */
  readonly help: readonly string[];
}

export const SETTINGS = [
  { key: 'listen', flag: 'listen', kind: 'value', arg: 'HOST:PORT', help: ['traffic address (default 0.0.0.0:8000; [::]:PORT for dual-stack)'] },
  {
    key: 'upstreams', flag: 'upstream', kind: 'list', arg: 'NAME=URL',
    help: ['an upstream, repeatable; the first is the baseline, which takes', 'the rest of the traffic (default flask=http://127.0.0.1:8080', 'and fastapi=http://127.0.0.1:8081)'],
  },
  {
    key: 'weights', flag: 'weight', kind: 'list', arg: 'NAME=PERCENT',
    help: ["an upstream's share, repeatable, up to two decimals; listed order", 'is split_clients line order (default: 100% to the baseline)'],
  },
  {
    key: 'key', flag: 'key', kind: 'value', arg: 'TEMPLATE',
    help: ['split key, nginx variables (default ${remote_addr}${uri});', '$remote_addr $uri $request_uri $args $host $arg_NAME', '$http_NAME $cookie_NAME'],
  },
  { key: 'trustProxy', flag: 'trust-proxy', kind: 'switch', help: ['take $remote_addr from the last X-Forwarded-For entry'] },
  { key: 'upstreamHeader', flag: 'no-upstream-header', kind: 'off', help: ['do not add X-Drum-Splitter-Upstream to responses'] },
  { key: 'overrideHeader', flag: 'override-header', kind: 'value', arg: 'NAME', help: ['header that forces a request to the upstream it names (off)'] },
  { key: 'timeout', flag: 'timeout', kind: 'value', arg: 'DURATION', help: ['upstream response timeout, e.g. 120s (default 120s)'] },
  { key: 'bodyLimit', flag: 'body-limit', kind: 'value', arg: 'SIZE', help: ['largest request body, e.g. 100MB (default 100MB)'] },
  {
    key: 'bufferMemory', flag: 'buffer-memory', kind: 'value', arg: 'SIZE',
    help: ['per request and per answer, bytes held in memory while', 'buffering; the rest goes to a temp file (default 64KB)'],
  },
  {
    key: 'bufferDir', flag: 'buffer-dir', kind: 'value', arg: 'DIR',
    help: ['where those temp files go, 0600, removed when the exchange', "ends (default: the system's temp directory)"],
  },
  {
    key: 'requestBuffering', flag: 'no-request-buffering', kind: 'off',
    help: ['stream request bodies upstream as they arrive instead of', 'reading them whole before connecting (per upstream: config)'],
  },
  {
    key: 'responseBuffering', flag: 'no-response-buffering', kind: 'off',
    help: ['let a slow client slow the upstream down instead of holding', 'its answer for the client (per upstream: config)'],
  },
  {
    key: 'drainTimeout', flag: 'drain-timeout', kind: 'value', arg: 'DURATION',
    help: ['on SIGTERM, how long requests in flight may finish before', 'they are cut (default: --timeout)'],
  },
  {
    key: 'upstreamKeepAlive', flag: 'upstream-keepalive', kind: 'value', arg: 'DUR',
    help: ['idle upstream connection lifetime (default 1s; keep it below', "the upstream's own keep-alive, 2s for gunicorn)"],
  },
  { key: 'accessLog', flag: 'access-log', kind: 'switch', help: ['log every request as a JSON line'] },
  { key: 'logLevel', flag: 'log-level', kind: 'value', arg: 'LEVEL', help: ['fatal|error|warn|info|debug|trace|silent (default info)'] },
  {
    key: 'admin', flag: 'admin', kind: 'value', arg: 'HOST:PORT',
    help: ['admin API address (default 127.0.0.1:9901); off loopback it', 'needs a token'],
  },
  { key: 'adminTokenFile', flag: 'admin-token-file', kind: 'value', arg: 'FILE', help: ['admin tokens, NAME:TOKEN per line (or DRUM_SPLITTER_ADMIN_TOKEN)'] },
  { key: 'state', flag: 'state', kind: 'value', arg: 'FILE', help: ['keep the weights and their audit trail here across restarts'] },
  { key: 'pollInterval', flag: 'poll-interval', kind: 'value', arg: 'DURATION', help: ["how often upstreams' /ping and /stats/ are read (default 15s)"] },
  {
    key: 'metricsOnTraffic', flag: 'metrics-on-traffic', kind: 'switch',
    help: ['also answer GET /metrics on the traffic port (off; it is always', 'on the admin API; only with --workers 1)'],
  },
  {
    key: 'workers', flag: 'workers', kind: 'value', arg: 'N|auto',
    help: ['traffic worker processes (default 1: this process serves', 'traffic; auto: one per CPU); weights, recording and metrics', 'stay one, in the primary'],
  },
  {
    key: 'record', flag: 'record', kind: 'value', arg: 'FILE',
    help: ["record sampled requests to this JSONL file, for the seed's", 'replay script (switchable at runtime: PUT /recording)'],
  },
  { key: 'recordSample', flag: 'record-sample', kind: 'value', arg: 'RATE', help: ['share of requests recorded, 0..1 (default 0.01)'] },
  {
    key: 'recordPaths', flag: 'record-paths', kind: 'list', arg: 'LIST',
    help: ["routes recorded, comma-separated (default DRUM's prediction", 'routes: /predict/ /predictions/ /transform/ /invocations', '/predictUnstructured/ /predictionsUnstructured/)'],
  },
  {
    key: 'recordMaxBody', flag: 'record-max-body', kind: 'value', arg: 'SIZE',
    help: ['body bytes kept per record (default 10MB); a bigger body is', 'forwarded whole and recorded truncated'],
  },
  { key: 'recordRotateBytes', flag: 'record-rotate-bytes', kind: 'value', arg: 'SIZE', help: ['start FILE.1, FILE.2, ... past this size (default: never)'] },
  {
    key: 'recordQueue', flag: 'record-queue', kind: 'value', arg: 'SIZE',
    help: ['records waiting for the disk before new ones are dropped', '(default 64MB; at least one record of the largest body)'],
  },
  {
    key: 'recordMemory', flag: 'record-memory', kind: 'value', arg: 'SIZE',
    help: ['bodies held in memory at once for records in flight; past', 'it a request passes unrecorded (default: --record-queue / 4)'],
  },
  { key: 'recordResponses', flag: 'record-responses', kind: 'switch', help: ["also record each response's status and body (capped)"] },
  {
    key: 'recordRedact', flag: 'record-redact', kind: 'list', arg: 'LIST',
    help: ['more headers to record as "[REDACTED]", comma-separated', '(always: Authorization, Cookie, X-Api-Key, DataRobot keys...)'],
  },
  { key: 'recordNoRedact', flag: 'record-no-redact', kind: 'switch', help: ['do not redact the default headers (only --record-redact ones)'] },
  {
    key: 'shadowSample', flag: 'shadow-sample', kind: 'value', arg: 'RATE',
    help: ["share of the baseline's requests also sent to the shadow", 'upstream and compared, 0..1 (default 0: off; switchable at', 'runtime: PUT /shadow)'],
  },
  { key: 'shadow', flag: 'shadow', kind: 'value', arg: 'NAME', help: ['the shadow upstream (default: the second upstream, the canary)'] },
  {
    key: 'shadowPaths', flag: 'shadow-paths', kind: 'list', arg: 'LIST',
    help: ['routes shadowed, comma-separated (default: the record paths;', 'shadow only routes without side effects)'],
  },
  { key: 'shadowMaxInflight', flag: 'shadow-max-inflight', kind: 'value', arg: 'N', help: ['shadow copies in flight at once; past it one is dropped (64)'] },
  {
    key: 'shadowMaxBody', flag: 'shadow-max-body', kind: 'value', arg: 'SIZE',
    help: ['body bytes kept per side of a copy; a copy with a larger', 'request or answer is dropped (default 1MB)'],
  },
  {
    key: 'shadowTimeout', flag: 'shadow-timeout', kind: 'value', arg: 'DURATION',
    help: ["a copy's whole limit, from sending it to the answer's last", 'byte; past it the copy is an error (timeout) and its slot', 'freed (default: --timeout, at most 10s)'],
  },
  { key: 'shadowLog', flag: 'shadow-log', kind: 'value', arg: 'FILE', help: ['write each mismatch (request, both answers, diff) as JSONL, 0600'] },
  { key: 'shadowIgnore', flag: 'shadow-ignore', kind: 'list', arg: 'LIST', help: ['JSON paths whose differences do not count, comma-separated'] },
  {
    key: 'shadowNoiseSample', flag: 'shadow-noise-sample', kind: 'value', arg: 'RATE',
    help: ['share of copies also sent to the baseline a second time, 0..1', "(default 0); a field differing no more often than the", "baseline's two answers do is noise and does not count"],
  },
  { key: 'shadowRelative', flag: 'shadow-relative', kind: 'value', arg: 'R', help: ['numbers are equal within absolute + relative × |baseline| (0)'] },
  { key: 'shadowAbsolute', flag: 'shadow-absolute', kind: 'value', arg: 'A', help: ['(default 1e-5: the seed compared 5 places)'] },
] as const satisfies readonly Setting[];

/** Settings only a config file gives: structures no flag could carry. */
export const FILE_ONLY = [
  // The canary controller's plan (src/rollout/plan.ts).
  'rollout',
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

/** The parseArgs option of each setting's flag. */
export function settingOptions(): Record<string, OptionSpec> {
  return Object.fromEntries(
    (SETTINGS as readonly Setting[]).map((s) => [s.flag, s.kind === 'list' ? { type: 'string', multiple: true } : { type: s.kind === 'value' ? 'string' : 'boolean' }]),
  );
}

/** Usage lines for `--NAME ARG   help`, the help column at 29. */
export function usageLines(entries: readonly { flag: string; arg?: string; help: readonly string[] }[]): string {
  const column = 29;
  return entries
    .map(({ flag, arg, help }) => {
      const head = `  --${flag}${arg === undefined ? '' : ` ${arg}`}`;
      const [first, ...rest] = help;
      return [`${head.padEnd(column - 1)} ${first}`, ...rest.map((l) => `${' '.repeat(column)}${l}`)].join('\n');
    })
    .join('\n');
}

/** Words joined with ", " and wrapped to lines of at most `width`, for the usage text. */
export function wrapped(words: readonly string[], width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const [i, word] of words.entries()) {
    const piece = i === words.length - 1 ? word : `${word},`;
    if (line !== '' && line.length + 1 + piece.length > width) {
      lines.push(line);
      line = piece;
    } else {
      line = line === '' ? piece : `${line} ${piece}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

type OptionSpec = { type: 'string' | 'boolean'; multiple?: true; short?: string };

/** The flags of the commands other than serve, with their help. */
export const WEIGHTS_FLAGS = [
  { flag: 'admin-url', arg: 'URL', help: ['the admin API (default http://127.0.0.1:9901)'] },
  { flag: 'token', arg: 'TOKEN', help: ['bearer token for writes (default DRUM_SPLITTER_ADMIN_TOKEN)'] },
  { flag: 'reason', arg: 'TEXT', help: ['why, for the audit trail (set, rollback, rollout commands)'] },
] as const;

/** The admin API clients' flags; --admin is the old spelling of --admin-url there, still taken (with a warning). */
const ADMIN_CLIENT_FLAGS: Readonly<Record<string, OptionSpec>> = { ...Object.fromEntries(WEIGHTS_FLAGS.map((f) => [f.flag, { type: 'string' }])), admin: { type: 'string' } };

/** Which flags each command takes; any other is refused, so a flag given to the wrong command is never silently ignored. */
export const COMMAND_FLAGS: Readonly<Record<string, Readonly<Record<string, OptionSpec>>>> = {
  serve: { ...settingOptions(), config: { type: 'string' } },
  weights: ADMIN_CLIENT_FLAGS,
  rollout: ADMIN_CLIENT_FLAGS,
  demo: { listen: { type: 'string' }, rollout: { type: 'boolean' } },
  // Repeatable, but declared as serve's is (one spec per flag name in allOptions): main.ts reads every --config of check from parseArgs' tokens.
  check: { config: { type: 'string' } },
};

/** Every flag any command takes, for parseArgs; which command may use which is checked after. */
export function allOptions(): Record<string, OptionSpec> {
  return Object.assign({ help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } }, ...Object.values(COMMAND_FLAGS)) as Record<string, OptionSpec>;
}
