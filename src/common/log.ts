import { pino, type Logger } from 'pino';

/** JSON lines on stdout, as platform log pipelines expect. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { name: 'drum-splitter' } });
}
