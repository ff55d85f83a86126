/**
 * Request recording for replay (issue 5): the JSONL line format.
 *
 * The file is a contract with the seed's Option A replay script (CANARY_DEPLOYMENT.md), which
 * reads it with `RequestRecord.from_dict(json.loads(line))`: `method`, `path`, `headers`,
 * `body_hex` (bytes.fromhex) and `timestamp` are the fields it uses. Lines are pure ASCII
 * (every character past U+007F is written as a \uXXXX escape, as Python's json.dumps does), so
 * the script's `open()` reads them whatever the locale's encoding.
 */

/** One JSONL line: the seed's fields first (timestamp epoch seconds float, method, path incl. query, headers with original names, body_hex, content_type), then ours. */
export interface RecordLine {
  timestamp: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body_hex: string;
  content_type: string;
  id: string;
  upstream: string;
  status: number;
  latency_ms: number;
  body_truncated: boolean;
  response?: { status: number; body_hex: string; body_truncated: boolean };
}

/**
 * Request headers whose values are replaced by "[REDACTED]" unless configured otherwise:
 * the generic credentials, and DataRobot's —
 * - `datarobot-key`: the prediction-server key the dedicated Prediction API requires next to
 *   `Authorization: Bearer <API key>` (DataRobot's Prediction API documentation);
 * - `x-datarobot-api-token`, `x-datarobot-api-key`: the API token/key headers DataRobot's
 *   agent, MCP and GenAI components accept in place of `Authorization`;
 * - `x-datarobot-authorization`, `x-datarobot-identity-token`: the bearer/identity tokens
 *   those components forward on a user's behalf.
 */
export const DEFAULT_REDACT: readonly string[] = Object.freeze([
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-api-key',
  'datarobot-key',
  'x-datarobot-api-token',
  'x-datarobot-api-key',
  'x-datarobot-authorization',
  'x-datarobot-identity-token',
]);

/** What a redacted header's value is recorded as. */
export const REDACTED = '[REDACTED]';

/**
 * Headers from Node's rawHeaders (original names; repeated ones joined with ", "), with the named ones (case-insensitive) replaced by "[REDACTED]".
 * A repeated header keeps the spelling of its first occurrence. Repeated Cookie headers are joined
 * with "; " instead (RFC 9110 §5.3 excepts them from comma joining; RFC 6265 §5.4), as Node does.
 */
export function recordHeaders(rawHeaders: readonly string[], redact: ReadonlySet<string>): Record<string, string> {
  const hidden = new Set<string>();
  for (const name of redact) hidden.add(name.toLowerCase());
  const byName = new Map<string, [name: string, value: string]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    const lower = name.toLowerCase();
    const seen = byName.get(lower);
    if (seen === undefined) byName.set(lower, [name, value]);
    else seen[1] += (lower === 'cookie' ? '; ' : ', ') + value;
  }
  // Object.fromEntries defines own properties, so even a header named "__proto__" is kept.
  return Object.fromEntries([...byName].map(([lower, [name, value]]) => [name, hidden.has(lower) ? REDACTED : value]));
}
