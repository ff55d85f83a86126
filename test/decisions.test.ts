/** Small pure decisions on the request path, as tables. */
import t from 'tap';
import { plainAddress } from '../src/proxy.js';
import { malformedStatus } from '../src/server.js';
import { BodyTooLarge, classifyFailure } from '../src/upstream.js';

const withCode = (code: string | undefined, message = 'x'): Error => Object.assign(new Error(message), { code });

t.test('classifyFailure: what the client hears for each upstream failure', async (t) => {
  const cases: [Error, number, string | RegExp][] = [
    [new BodyTooLarge('request body is over the limit of 10 bytes'), 413, 'request body is over the limit of 10 bytes'],
    [withCode('UND_ERR_HEADERS_TIMEOUT'), 504, 'upstream timed out'],
    [withCode('UND_ERR_BODY_TIMEOUT'), 504, 'upstream timed out'],
    [withCode('UND_ERR_CONNECT_TIMEOUT'), 504, 'upstream timed out'],
    [withCode('ECONNREFUSED'), 502, 'upstream refused the connection'],
    [withCode('ECONNRESET'), 502, 'upstream closed the connection'],
    [withCode('UND_ERR_SOCKET'), 502, 'upstream closed the connection'],
    [withCode('EPIPE'), 502, 'upstream closed the connection'],
    [withCode('ENOTFOUND'), 502, 'upstream failed: ENOTFOUND'],
    [withCode(undefined, 'something odd'), 502, 'upstream failed: something odd'],
  ];
  for (const [err, status, reason] of cases) {
    const got = classifyFailure(err);
    t.equal(got.status, status, `${(err as { code?: string }).code ?? err.name} → ${status}`);
    t.match(got.reason, reason);
  }
});

t.test('malformedStatus: what a request Node could not parse gets', async (t) => {
  t.same(malformedStatus('HPE_HEADER_OVERFLOW'), [431, 'Request Header Fields Too Large']);
  t.same(malformedStatus('ERR_HTTP_REQUEST_TIMEOUT'), [408, 'Request Timeout']);
  t.same(malformedStatus('HPE_INVALID_METHOD'), [400, 'Bad Request']);
  t.same(malformedStatus(undefined), [400, 'Bad Request']);
});

t.test('plainAddress: $remote_addr as nginx writes it', async (t) => {
  const cases: [string | undefined, string][] = [
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['127.0.0.1', '127.0.0.1'],
    ['::1', '::1'],
    ['2001:db8::1', '2001:db8::1'],
    ['::ffff:abcd', '::ffff:abcd'],
    [undefined, ''],
  ];
  for (const [input, want] of cases) t.equal(plainAddress(input), want, `${input} → ${want}`);
});
