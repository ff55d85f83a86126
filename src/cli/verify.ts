import { UsageError } from '../common/flags.js';
import { parseDuration } from '../common/units.js';
import { verifyRequestSource } from '../replay/verify-input.js';
import { verificationOutcome, verifyUrl, type VerifyItem } from '../rollout/verify.js';

/** "  ok    ping            GET /ping → 200": a mark a person scans down, the item, what was seen. */
export function itemLine(item: VerifyItem): string {
  const mark = item.ok === null ? 'skip' : item.ok ? 'ok' : 'FAIL';
  return `  ${mark.padEnd(6)}${item.name.padEnd(16)}${item.detail}`;
}

/**
 * `drum-splitter verify --upstream URL [--request FILE...]`: the checks a rollback's verification
 * runs (rollout/verify.ts), against one upstream, now. 0 verified, 1 failed (2: usage, by main).
 */
export async function verifyCommand(values: Readonly<Record<string, unknown>>): Promise<number> {
  const given = values.upstream as string | undefined;
  if (given === undefined) throw new UsageError('verify', 'needs --upstream URL, the DRUM server to check');
  if (!/^https?:\/\//.test(given) || !URL.canParse(given)) throw new UsageError('verify', `--upstream "${given}" is not an http:// or https:// URL`);
  const url = new URL(given);
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(values.timeout, '--timeout');
  } catch (err) {
    throw new UsageError('verify', (err as Error).message);
  }
  const requests = verifyRequestSource((values.request as readonly string[] | undefined) ?? [], () => undefined);
  const items = await verifyUrl('upstream', url, { timeoutMs, canaryIdentity: null, requests });
  console.log(`drum-splitter verify: ${url.href}`);
  for (const item of items) console.log(itemLine(item));
  const named = (ok: boolean | null): string => items.filter((i) => i.ok === ok).map((i) => i.name).join(', ');
  const skipped = named(null) === '' ? '' : ` (skipped: ${named(null)})`;
  if (verificationOutcome(items, url.href).action === 'verified') {
    console.log(`verified${skipped}`);
    return 0;
  }
  console.log(`verification failed: ${named(false)}${skipped}`);
  return 1;
}
