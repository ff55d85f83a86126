/** One subscriber list for outcomes, weight changes and upstream polls: order, twice, unsubscribing, and a subscriber that throws. */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { createSubscriberErrors, Subscribers } from '../src/common/subscribers.js';
import { metricSum } from './helpers/metrics.js';

function rig() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  const registry = new Registry();
  let now = 0;
  const list = new Subscribers<number>('numbers', { log, errors: createSubscriberErrors(registry), now: () => now });
  const count = (subscriber: string): Promise<number> => metricSum(registry, 'drum_subscriber_errors_total', { subscriber });
  return { list, lines, count, advance: (ms: number) => (now += ms) };
}

t.test('told in the order subscribed; a function subscribed twice is told twice, each subscription ended on its own (idempotently)', async (t) => {
  const { list } = rig();
  const heard: string[] = [];
  const a = (n: number): void => void heard.push(`a${n}`);
  const offFirst = list.subscribe('a', a);
  const offSecond = list.subscribe('a', a);
  list.subscribe('b', (n) => heard.push(`b${n}`));
  list.publish(1);
  offFirst();
  offFirst();
  list.publish(2);
  offSecond();
  list.publish(3);
  t.same(heard, ['a1', 'a1', 'b1', 'a2', 'b2', 'b3']);
});

t.test('a subscriber that unsubscribes while told: the publish in progress goes on through the list as it was', async (t) => {
  const { list } = rig();
  const heard: string[] = [];
  const off = list.subscribe('once', (n) => {
    heard.push(`once${n}`);
    off();
  });
  list.subscribe('always', (n) => heard.push(`always${n}`));
  list.publish(1);
  list.publish(2);
  t.same(heard, ['once1', 'always1', 'always2']);
});

t.test('a subscriber that throws: the others are still told, it is counted each time and logged once a minute', async (t) => {
  const { list, lines, count, advance } = rig();
  const heard: number[] = [];
  list.subscribe('broken', (n) => {
    throw new Error(`no ${n}`);
  });
  list.subscribe('odd', () => {
    throw 'a string';
  });
  list.subscribe('after', (n) => heard.push(n));
  t.doesNotThrow(() => {
    list.publish(1);
    list.publish(2);
  });
  advance(60_000);
  list.publish(3);
  t.same(heard, [1, 2, 3], 'the one after heard every value');
  t.equal(await count('numbers/broken'), 3);
  t.equal(await count('numbers/odd'), 3);
  t.match(lines, [
    { level: 50, msg: 'a subscriber failed (drum_subscriber_errors_total)', subscriber: 'numbers/broken', err: 'no 1', errors_not_logged: 0 },
    { subscriber: 'numbers/odd', err: 'a string', errors_not_logged: 0 },
    { subscriber: 'numbers/broken', err: 'no 3', errors_not_logged: 1 },
    { subscriber: 'numbers/odd', errors_not_logged: 1 },
  ], 'each subscriber throttled on its own');
  t.equal(lines.length, 4);
});
