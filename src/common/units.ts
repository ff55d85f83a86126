import { InputError } from './input-error.js';

/** Sizes (100MB, 10MiB) and durations (500ms, 30s, 15m, 48h, 7d) as users write them. */

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
};

export function parseSize(value: unknown, field: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(String(value).trim());
  const unit = SIZE_UNITS[m?.[2]?.toLowerCase() ?? 'none'];
  if (m === null || unit === undefined) {
    throw new InputError(`"${String(value)}" is not a size such as 100MB, 10MiB or 1048576`, field);
  }
  return Math.floor(Number(m[1]) * unit);
}

const TIME_UNITS: Record<string, number> = { '': 1000, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(value: unknown, field: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|)$/.exec(String(value).trim());
  // Rounded before the check: "0.4ms" would otherwise become 0, which undici takes as "no timeout".
  const ms = m === null ? NaN : Math.round(Number(m[1]) * TIME_UNITS[m[2]!]!);
  if (!(ms > 0)) throw new InputError(`"${String(value)}" is not a duration such as 120s, 500ms, 15m, 48h or 7d`, field);
  return ms;
}
