import { InputError } from './input-error.js';

/**
 * Percentages are kept as integer hundredths (5% = 500, 37.55% = 3755), the unit nginx's
 * split_clients works in (ngx_atofp with two decimals), so arithmetic is exact.
 */
const PERCENT = /^(\d{1,3})(?:\.(\d{1,2}))?%?$/;

export function parsePercent(value: unknown, field: string): number {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string') throw new InputError('must be a number of percent', field);
  const m = PERCENT.exec(text.trim());
  if (m === null) {
    throw new InputError(
      `"${text}" is not a percentage from 0 to 100 with at most two decimals`,
      field,
    );
  }
  const hundredths = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  if (hundredths > 10000) throw new InputError(`${text} is over 100%`, field);
  return hundredths;
}

/** 3755 → 37.55, the number users see in JSON and logs. */
export function toPercent(hundredths: number): number {
  return hundredths / 100;
}
