import type { Registry } from 'prom-client';

/** The sum of a metric's samples, in Prometheus text exposition, whose labels include all of `labels`. */
export function sampleSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/** sampleSum over one metric of a prom-client registry. */
export async function metricSum(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sampleSum(await registry.getSingleMetricAsString(name), name, labels);
}
