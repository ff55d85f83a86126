import { InputError } from '../common/input-error.js';
import { parseDuration } from '../common/units.js';
import { parseHostPort } from '../config/config.js';
import { createStandin, type Faults } from './standin.js';

/** The stand-in's faults from its flags; each bad one is an InputError naming its flag. */
export function standinFaults(values: Readonly<Record<string, unknown>>): Faults {
  const errorRate = Number(values['error-rate']);
  if (!(errorRate >= 0 && errorRate <= 1)) throw new InputError(`"${String(values['error-rate'])}" is not a share between 0 and 1`, 'error-rate');
  const extraMemoryMb = Number(values['memory-mb']);
  if (!(Number.isInteger(extraMemoryMb) && extraMemoryMb >= 0)) throw new InputError(`"${String(values['memory-mb'])}" is not a whole number of megabytes`, 'memory-mb');
  return { errorRate, addedLatencyMs: values.latency === undefined ? 0 : parseDuration(values.latency, 'latency'), extraMemoryMb };
}

/** The faults in a few words, for the line that says where the stand-in listens; empty without any. */
export function faultSummary(faults: Faults): string {
  const shown = [
    faults.addedLatencyMs > 0 ? `+${faults.addedLatencyMs} ms a prediction` : '',
    faults.errorRate > 0 ? `${faults.errorRate * 100}% errors` : '',
    faults.extraMemoryMb > 0 ? `+${faults.extraMemoryMb} MB drum_rss` : '',
  ].filter((f) => f !== '');
  return shown.length === 0 ? '' : ` (${shown.join(', ')})`;
}

/** `drum-splitter standin flask|fastapi`: one stand-in, serving until a signal. */
export async function standinCommand(values: Readonly<Record<string, unknown>>, args: readonly string[]): Promise<number> {
  const [server, ...extra] = args;
  if (server === undefined || extra.length > 0 || !/^[a-z][a-z0-9_-]*$/.test(server)) {
    throw new InputError('give one server name: flask or fastapi (what /info/ reports as drumServer)');
  }
  const faults = standinFaults(values);
  const { host, port } = parseHostPort(values.listen, 'listen');
  const app = createStandin(server, faults);
  const url = await app.listen({ host, port });
  console.log(`${server} stand-in on ${url}${faultSummary(faults)}; Ctrl-C stops it`);
  const stop = (): void => void app.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return -1;
}
