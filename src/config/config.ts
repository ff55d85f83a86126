import { readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { InputError } from '../common/input-error.js';
import { isObject } from '../common/json-shape.js';
import { parseHeaderName } from '../common/headers.js';
import { parseDuration, parseSize } from '../common/units.js';
import { SETTING_DEFAULTS as DEFAULTS, SETTING_KEYS, type RawSettings, type SettingKey } from './settings.js';

export type { RawSettings };
import { compileKey } from '../proxy/key.js';
import { SPLIT_HASHES, type SplitHash } from '../proxy/split.js';
import { FALLBACK_MODES, type FallbackMode } from '../proxy/fallback.js';
import { parsePlan, type RolloutPlan } from '../rollout/plan.js';
import { parsePercent } from '../common/percent.js';
import { parseRate, type RecordSettings } from '../record/policy.js';
import type { HostPort, ProxyConfig, Upstream } from '../proxy/options.js';
import type { KeyPairFiles } from '../common/tls.js';
import { DEFAULT_REDACT } from '../record/line.js';
import { checkBaselineAsked, checkShares, type Share } from '../weights/shares.js';
import { parseRoutes } from '../weights/routes.js';
import type { ShadowSettings } from '../shadow/shadow.js';
import { checkIgnorePaths, parseTolerance } from '../compare/answers.js';

/** The whole resolved configuration: the traffic side's, and the process's own. */
export interface Config extends ProxyConfig {
  readonly logLevel: string;
  /** The admin API's address, separate from traffic. */
  readonly admin: HostPort;
  /** The admin API's certificate and key; undefined: plain HTTP. */
  readonly adminTls: KeyPairFiles | undefined;
  readonly adminTokenFile: string | undefined;
  /** Where the weights and their audit trail persist across restarts; undefined = not kept. */
  readonly state: string | undefined;
  /** How often each upstream's /ping and /stats/ are polled. */
  readonly pollIntervalMs: number;
  /** Proxy processes (node:cluster); 1 = this process serves traffic itself. */
  readonly workers: number;
  /** The canary controller's plan: the config's `rollout:`, or the seed's with two upstreams or more; undefined with one. */
  readonly rollout: RolloutPlan | undefined;
  readonly shadow: ShadowSettings;
}

/** A copy is for comparing, not for serving: one slower than this holds a slot for nothing. */
const SHADOW_TIMEOUT_MAX_MS = 10_000;

/** The longest delay a timer takes (2^31 - 1 ms, about 24.8 days); a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function parseHostPort(value: unknown, field: string): HostPort {
  if (typeof value !== 'string') throw new InputError('must be HOST:PORT', field);
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (m === null || port > 65535) {
    throw new InputError(`"${value}" is not HOST:PORT (e.g. 0.0.0.0:8000 or [::]:8000)`, field);
  }
  return { host: m[1] ?? m[2]!, port };
}

const UPSTREAM_KEYS = ['url', 'requestBuffering', 'responseBuffering', 'ca'];

/** What every upstream gets unless its own entry says otherwise: the buffering flags, --upstream-ca. */
interface UpstreamDefaults {
  readonly request: boolean;
  readonly response: boolean;
  readonly ca: string | undefined;
}

/** An upstream: its URL, or in a config file { url, requestBuffering?, responseBuffering?, ca? }. */
function parseUpstream(name: string, value: unknown, defaults: UpstreamDefaults): Upstream {
  const field = `upstreams.${name}`;
  if (value === null || typeof value !== 'object') {
    return { name, url: parseUpstreamUrl(name, value), requestBuffering: defaults.request, responseBuffering: defaults.response, ca: defaults.ca };
  }
  const unknown = Object.keys(value).find((k) => !UPSTREAM_KEYS.includes(k));
  if (unknown !== undefined) throw new InputError(`unknown key "${unknown}"; known: ${UPSTREAM_KEYS.join(', ')}`, field);
  const v = value as { url?: unknown; requestBuffering?: unknown; responseBuffering?: unknown; ca?: unknown };
  return {
    name,
    url: parseUpstreamUrl(name, v.url),
    requestBuffering: parseBoolean(v.requestBuffering ?? defaults.request, `${field}.requestBuffering`),
    responseBuffering: parseBoolean(v.responseBuffering ?? defaults.response, `${field}.responseBuffering`),
    ca: optionalPath(v.ca, `${field}.ca`) ?? defaults.ca,
  };
}

/** A certificate and its key, both or neither: one alone would serve plain HTTP where TLS was meant. */
function keyPairFiles(cert: unknown, key: unknown, fields: { readonly cert: string; readonly key: string }): KeyPairFiles | undefined {
  const files = { cert: optionalPath(cert, fields.cert), key: optionalPath(key, fields.key) };
  if (files.cert === undefined && files.key === undefined) return undefined;
  if (files.cert === undefined) throw new InputError(`needs ${fields.cert} too: the certificate for the key`, fields.key);
  if (files.key === undefined) throw new InputError(`needs ${fields.key} too: the certificate's private key`, fields.cert);
  return files as KeyPairFiles;
}

function parseUpstreamUrl(name: string, value: unknown): URL {
  const field = `upstreams.${name}`;
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(name)) {
    throw new InputError('an upstream name is a letter then letters, digits, "_" or "-"', field);
  }
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new InputError(`"${String(value)}" is not a URL`, field);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InputError(`"${String(value)}" must be an http:// or https:// URL`, field);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new InputError(`"${String(value)}" may have a path but no query, fragment or credentials`, field);
  }
  return url;
}

/** Ordered name → value pairs from a YAML mapping or from repeated NAME=VALUE flags. */
function pairs(value: unknown, field: string): [string, unknown][] {
  if (Array.isArray(value)) {
    return value.map((item) => {
      if (Array.isArray(item) && item.length === 2) return [String(item[0]), item[1]];
      const m = typeof item === 'string' ? /^([^=]+)=(.*)$/.exec(item) : null;
      if (m === null) throw new InputError(`"${String(item)}" is not NAME=VALUE`, field);
      return [m[1]!.trim(), m[2]!.trim()];
    });
  }
  if (value !== null && typeof value === 'object') return Object.entries(value);
  throw new InputError('must be a mapping of NAME: VALUE', field);
}

function parseBoolean(value: unknown, field: string): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new InputError(`"${String(value)}" is not true or false`, field);
}

/** A listening address: HOST:PORT with an IP address (or localhost) for HOST. */
function parseAddress(value: unknown, field: string): HostPort {
  const address = parseHostPort(value, field);
  if (isIP(address.host) === 0 && address.host !== 'localhost') {
    throw new InputError(`"${address.host}" is not an IP address`, field);
  }
  return address;
}

function optionalPath(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw new InputError('must be a file path', field);
  return value;
}

/** A list from YAML, or from flags: repeated and/or comma-separated. */
function parseList(value: unknown, field: string): string[] {
  const items = Array.isArray(value) ? value : [value];
  if (!items.every((v) => typeof v === 'string')) throw new InputError('must be a list of strings (or comma-separated)', field);
  return (items as string[]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

function shadowSettings(raw: RawSettings, upstreams: readonly Upstream[], recordPaths: readonly string[], timeoutMs: number): ShadowSettings {
  const names = upstreams.map((u) => u.name);
  const sampleRate = parseRate(raw.shadowSample ?? DEFAULTS.shadowSample, 'shadowSample');
  let upstream: string | undefined;
  if (raw.shadow !== undefined) {
    upstream = String(raw.shadow);
    if (!names.includes(upstream)) throw new InputError(`"${upstream}" is not an upstream; upstreams: ${names.join(', ')}`, 'shadow');
    if (upstream === names[0]) throw new InputError(`"${upstream}" is the baseline, whose requests are the ones copied; name another upstream`, 'shadow');
  } else {
    upstream = names[1];
  }
  if (sampleRate > 0 && upstream === undefined) throw new InputError('the shadow needs a second upstream to send copies to', 'shadowSample');
  const paths = raw.shadowPaths === undefined ? recordPaths : pathList(raw.shadowPaths, 'shadowPaths');
  const ignore = raw.shadowIgnore === undefined ? [] : parseList(raw.shadowIgnore, 'shadowIgnore');
  checkIgnorePaths(ignore, 'shadowIgnore');
  const log = optionalPath(raw.shadowLog, 'shadowLog');
  const noiseSample = parseRate(raw.shadowNoiseSample ?? 0, 'shadowNoiseSample');
  return {
    upstream,
    sampleRate,
    paths,
    maxInflight: positiveInteger(raw.shadowMaxInflight ?? DEFAULTS.shadowMaxInflight, 'shadowMaxInflight'),
    maxBody: positiveSize(raw.shadowMaxBody ?? DEFAULTS.shadowMaxBody, 'shadowMaxBody'),
    timeoutMs: raw.shadowTimeout === undefined ? Math.min(timeoutMs, SHADOW_TIMEOUT_MAX_MS) : shadowTimeout(raw.shadowTimeout),
    log,
    ignore,
    noiseSample,
    tolerance: parseTolerance(raw.shadowRelative, raw.shadowAbsolute, { relative: 'shadowRelative', absolute: 'shadowAbsolute' }),
  };
}

/** --shadow-timeout: a duration a timer can hold. */
function shadowTimeout(value: unknown): number {
  const ms = parseDuration(value, 'shadowTimeout');
  if (ms > MAX_TIMER_MS) throw new InputError(`"${String(value)}" is longer than the most a timer holds, 24d`, 'shadowTimeout');
  return ms;
}

/** Routes, e.g. the record paths: at least one, each starting with /. */
function pathList(value: unknown, field: string): string[] {
  const paths = parseList(value, field);
  if (paths.length === 0) throw new InputError('needs at least one path, e.g. /predict/', field);
  const notPath = paths.find((p) => !p.startsWith('/'));
  if (notPath !== undefined) throw new InputError(`"${notPath}" is not a path (it must start with /)`, field);
  return paths;
}

function recordSettings(raw: RawSettings): RecordSettings {
  const file = optionalPath(raw.record, 'record');
  const paths = pathList(raw.recordPaths ?? DEFAULTS.recordPaths, 'recordPaths');
  const extra = raw.recordRedact === undefined ? [] : parseList(raw.recordRedact, 'recordRedact').map((n) => parseHeaderName(n, 'recordRedact'));
  // Dropping the default list must be said explicitly; an empty or edited list does not do it.
  const redact = parseBoolean(raw.recordNoRedact ?? false, 'recordNoRedact') ? extra : [...DEFAULT_REDACT, ...extra];
  const maxBody = parseSize(raw.recordMaxBody ?? DEFAULTS.recordMaxBody, 'recordMaxBody');
  const responses = parseBoolean(raw.recordResponses ?? false, 'recordResponses');
  const queueBytes = positiveSize(raw.recordQueue ?? DEFAULTS.recordQueue, 'recordQueue');
  // A quarter of the queue by default: bodies in flight and lines waiting for the disk together stay bounded.
  const memoryBytes = raw.recordMemory === undefined ? Math.floor(queueBytes / 4) : positiveSize(raw.recordMemory, 'recordMemory');
  return {
    file,
    enabled: file !== undefined,
    sampleRate: parseRate(raw.recordSample ?? DEFAULTS.recordSample, 'recordSample'),
    paths,
    maxBody,
    rotateBytes: raw.recordRotateBytes === undefined ? undefined : positiveSize(raw.recordRotateBytes, 'recordRotateBytes'),
    queueBytes,
    memoryBytes,
    responses,
    redact: [...new Set(redact)],
  };
}

const MAX_WORKERS = 256;

/** A count of worker processes, or "auto" for one per CPU. */
function parseWorkers(value: unknown, metricsOnTraffic: boolean): number {
  const n = value === 'auto' ? availableParallelism() : typeof value === 'number' ? value : /^\d+$/.test(String(value)) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) {
    throw new InputError(`"${String(value)}" is not a number of workers from 1 to ${MAX_WORKERS}, or auto`, 'workers');
  }
  // Each worker would answer with its own counts only; the admin API's /metrics has them all.
  if (n > 1 && metricsOnTraffic) throw new InputError('metricsOnTraffic needs workers: 1; with more, scrape the admin API /metrics', 'workers');
  return n;
}

function positiveInteger(value: unknown, field: string): number {
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(String(value)) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new InputError(`"${String(value)}" is not a whole number above 0`, field);
  return n;
}

function positiveSize(value: unknown, field: string): number {
  const n = parseSize(value, field);
  if (n === 0) throw new InputError('must be more than 0 bytes', field);
  return n;
}

/** Reads a YAML config file into raw settings, rejecting unknown keys. */
export function readConfigFile(path: string): RawSettings {
  return parseConfigText(readConfigText(path), path);
}

/** A config file's text. */
export function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${path}: ${(err as Error).message}`, '--config');
  }
}

/**
 * The YAML parser, loaded by the first config file parsed: a process that reads none (serve
 * without --config, a --workers worker, the other commands) does not hold it (~9 MB at rest).
 * require() rather than import(): loaded on first use, parsing stays synchronous (the config
 * watcher's timer calls it); the package is CommonJS either way.
 */
let yaml: typeof import('yaml') | undefined;
const yamlParser = (): typeof import('yaml') => (yaml ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));

/** Parses a config file's text (read from `path`) into raw settings, rejecting unknown keys. */
export function parseConfigText(text: string, path: string): RawSettings {
  const { settings, source } = parseConfigDocument(text, path);
  for (const key of Object.keys(settings)) checkSettingKey(key, source);
  // Unfolded here, before flags are laid over the file: --key then wins over split.key.
  return unfoldSplit(settings as RawSettings);
}

const SPLIT_KEYS = { key: 'key', hash: 'splitHash' } as const;

/**
 * A file's `split: { key, hash }` as the settings it stands for, `key` and `splitHash`; the
 * same setting given both ways is refused rather than one silently winning.
 */
export function unfoldSplit(raw: RawSettings): RawSettings {
  const { split, ...rest } = raw;
  if (split === undefined) return raw;
  if (split === null || typeof split !== 'object' || Array.isArray(split)) throw new InputError('must be a mapping: { key: TEMPLATE, hash: HASH }', 'split');
  const out: Record<string, unknown> = rest;
  for (const [name, value] of Object.entries(split)) {
    const setting = SPLIT_KEYS[name as keyof typeof SPLIT_KEYS] as string | undefined;
    if (setting === undefined) throw new InputError(`unknown key "${name}"; known: ${Object.keys(SPLIT_KEYS).join(', ')}`, 'split');
    if (out[setting] !== undefined) throw new InputError(`split.${name} is another name for ${setting}, which is given too; give one`, 'split');
    // Checked here, where its error can name it as the file does.
    out[setting] = name === 'hash' ? parseSplitHash(value, 'split.hash') : value;
  }
  return out as RawSettings;
}

/** One of `values`, else an error listing them. */
function oneOf<T extends string>(values: readonly T[], value: unknown, field: string): T {
  if (!(values as readonly unknown[]).includes(value)) throw new InputError(`"${String(value)}" is not one of ${values.join(', ')}`, field);
  return value as T;
}

const parseSplitHash = (value: unknown, field: string): SplitHash => oneOf(SPLIT_HASHES, value, field);

/** A config file's settings, their keys not yet checked, and where they were read, as messages name it. */
export interface ConfigDocument {
  readonly settings: Record<string, unknown>;
  /** The file's path; for a ConfigMap, with the data key the settings are the value of. */
  readonly source: string;
}

/**
 * A config file's YAML as a mapping (an empty file is an empty mapping). A Kubernetes ConfigMap,
 * the manifest that mounts as the file, stands for the config in its data: the value of its one
 * key, read the same way (with several, which one is the config cannot be told: refused).
 */
export function parseConfigDocument(text: string, path: string): ConfigDocument {
  const doc = parseYamlMapping(text, path);
  if (doc.kind === undefined || doc.apiVersion === undefined) return { settings: doc, source: path };
  const kind = String(doc.kind);
  if (kind !== 'ConfigMap') throw new InputError(`${path} is a Kubernetes ${kind}, not a config file nor a ConfigMap holding one`, '--config');
  const name = `ConfigMap ${String((doc.metadata as { name?: unknown } | null | undefined)?.name ?? '(unnamed)')}`;
  const data = doc.data ?? {};
  if (!isObject(data)) throw new InputError(`${path}: the data of ${name} must be a mapping of KEY: TEXT`, '--config');
  const keys = Object.keys(data);
  if (keys.length !== 1) {
    const which = keys.length === 0 ? 'holds no data key' : `has ${keys.length} data keys (${keys.join(', ')}) and which holds the config cannot be told`;
    throw new InputError(`${path}: ${name} ${which}; its config is the value of one key, e.g. config.yaml`, '--config');
  }
  const [key] = keys as [string];
  const value = data[key];
  const source = `${path} (${name}, key ${key})`;
  if (typeof value !== 'string') throw new InputError(`${source} must be text, the config file's YAML (data: { ${key}: | ... })`, '--config');
  return { settings: parseYamlMapping(value, source), source };
}

function parseYamlMapping(text: string, source: string): Record<string, unknown> {
  const { parse } = yamlParser();
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new InputError(`${source} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, '--config');
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new InputError(`${source} must hold a mapping of settings`, '--config');
  }
  return doc as Record<string, unknown>;
}

/** Whether a config file may hold `key`. */
export const isSettingKey = (key: string): boolean => SETTING_KEYS.includes(key as SettingKey);

/** What an unknown setting's message ends with: the settings a config file may hold. */
export const KNOWN_SETTINGS = `known: ${SETTING_KEYS.join(', ')}`;

/** Throws unless `key` is a setting a config file may hold. */
export function checkSettingKey(key: string, source: string): void {
  if (!isSettingKey(key)) throw new InputError(`unknown setting "${key}" in ${source}; ${KNOWN_SETTINGS}`, '--config');
}

/** Validates raw settings (file merged with flags, flags winning) into a Config. */
export function buildConfig(given: RawSettings): Config {
  const raw = unfoldSplit(given);
  const defaults: UpstreamDefaults = {
    request: parseBoolean(raw.requestBuffering ?? true, 'requestBuffering'),
    response: parseBoolean(raw.responseBuffering ?? true, 'responseBuffering'),
    ca: optionalPath(raw.upstreamCa, 'upstreamCa'),
  };
  const upstreams = pairs(raw.upstreams ?? DEFAULTS.upstreams, 'upstreams').map(([name, value]) => parseUpstream(name, value, defaults));
  const names = new Set<string>();
  for (const { name } of upstreams) {
    if (names.has(name)) throw new InputError(`"${name}" is named twice`, 'upstreams');
    names.add(name);
  }
  if (upstreams.length === 0) throw new InputError('at least one upstream is needed', 'upstreams');

  const weights: Share[] = pairs(raw.weights ?? [], 'weights').map(([name, value]) => [name, parsePercent(value, `weights.${name}`)]);
  checkShares(weights, [...names], 'weights');
  // As the admin API judges weights: the baseline's line, if any, must be the share it gets.
  checkBaselineAsked([...names], weights, weights.find(([name]) => name === upstreams[0]!.name)?.[1], 'weights');

  const key = String(raw.key ?? DEFAULTS.key);
  compileKey(key);

  const logLevel = oneOf(LOG_LEVELS, String(raw.logLevel ?? DEFAULTS.logLevel), 'logLevel');
  const listen = parseAddress(raw.listen ?? DEFAULTS.listen, 'listen');
  const admin = parseAddress(raw.admin ?? DEFAULTS.admin, 'admin');
  const metricsOnTraffic = parseBoolean(raw.metricsOnTraffic ?? false, 'metricsOnTraffic');
  const timeoutMs = parseDuration(raw.timeout ?? DEFAULTS.timeout, 'timeout');
  const record = recordSettings(raw);
  const shadow = shadowSettings(raw, upstreams, record.paths, timeoutMs);
  const rollout = raw.rollout === undefined && upstreams.length < 2 ? undefined : parsePlan(raw.rollout, upstreams.map((u) => u.name));
  // The shadow phase judges the shadow's pairs: they must be the canary's.
  if (rollout?.steps[0]!.shadow !== undefined && shadow.upstream !== rollout.canary) {
    throw new InputError(`the shadow phase needs the live shadow to copy to the canary "${rollout.canary}", and it copies to "${shadow.upstream}"; set shadow: ${rollout.canary}`, 'rollout.steps[0].shadow');
  }

  return {
    listen,
    tls: keyPairFiles(raw.tlsCert, raw.tlsKey, { cert: 'tlsCert', key: 'tlsKey' }),
    upstreams,
    weights,
    routes: parseRoutes(raw.routes, [...names]),
    key,
    splitHash: parseSplitHash(raw.splitHash ?? DEFAULTS.splitHash, 'splitHash'),
    trustProxy: parseBoolean(raw.trustProxy ?? false, 'trustProxy'),
    upstreamHeader: parseBoolean(raw.upstreamHeader ?? true, 'upstreamHeader'),
    overrideHeader:
      raw.overrideHeader === undefined || raw.overrideHeader === null || raw.overrideHeader === false
        ? undefined
        : parseHeaderName(raw.overrideHeader, 'overrideHeader'),
    fallback: oneOf<FallbackMode>(FALLBACK_MODES, raw.fallback ?? DEFAULTS.fallback, 'fallback'),
    timeoutMs,
    bodyLimit: parseSize(raw.bodyLimit ?? DEFAULTS.bodyLimit, 'bodyLimit'),
    buffer: {
      memory: positiveSize(raw.bufferMemory ?? DEFAULTS.bufferMemory, 'bufferMemory'),
      dir: optionalPath(raw.bufferDir, 'bufferDir') ?? tmpdir(),
    },
    drainTimeoutMs: raw.drainTimeout === undefined ? timeoutMs : parseDuration(raw.drainTimeout, 'drainTimeout'),
    upstreamKeepAliveMs: parseDuration(raw.upstreamKeepAlive ?? DEFAULTS.upstreamKeepAlive, 'upstreamKeepAlive'),
    accessLog: parseBoolean(raw.accessLog ?? false, 'accessLog'),
    logLevel,
    admin,
    adminTls: keyPairFiles(raw.adminTlsCert, raw.adminTlsKey, { cert: 'adminTlsCert', key: 'adminTlsKey' }),
    adminTokenFile: optionalPath(raw.adminTokenFile, 'adminTokenFile'),
    state: optionalPath(raw.state, 'state'),
    pollIntervalMs: parseDuration(raw.pollInterval ?? DEFAULTS.pollInterval, 'pollInterval'),
    metricsOnTraffic,
    record,
    shadow,
    workers: parseWorkers(raw.workers ?? DEFAULTS.workers, metricsOnTraffic),
    rollout,
  };
}
