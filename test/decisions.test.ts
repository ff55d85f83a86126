/** Small pure decisions on the request path, as tables. */
import t from 'tap';
import { headerFault, MAX_HEADERS, plainAddress } from '../src/proxy/handler.js';
import { malformedStatus } from '../src/proxy/listener.js';
import { BodyTooLarge, BufferFailed, classifyFailure, type Blame } from '../src/proxy/forward.js';

const withCode = (code: string | undefined, message = 'x'): Error => Object.assign(new Error(message), { code });

t.test('classifyFailure: what the client hears for each failure, and whose fault it is', async (t) => {
  const cases: [Error, number, string | RegExp, Blame][] = [
    [new BodyTooLarge('request body is over the limit of 10 bytes'), 413, 'request body is over the limit of 10 bytes', 'client'],
    [new BufferFailed('cannot buffer: ENOSPC'), 500, 'cannot buffer: ENOSPC', 'proxy'],
    [withCode('UND_ERR_INVALID_ARG', 'duplicate host header'), 400, 'request cannot be forwarded: duplicate host header', 'client'],
    [withCode('UND_ERR_NOT_SUPPORTED', 'x'), 400, /cannot be forwarded/, 'client'],
    [withCode('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'x'), 400, /cannot be forwarded/, 'client'],
    [withCode('UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'x'), 502, 'upstream failed: UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'upstream'],
    [withCode('UND_ERR_HEADERS_TIMEOUT'), 504, 'upstream timed out', 'upstream'],
    [withCode('UND_ERR_BODY_TIMEOUT'), 504, 'upstream timed out', 'upstream'],
    [withCode('UND_ERR_CONNECT_TIMEOUT'), 504, 'upstream timed out', 'upstream'],
    [withCode('ECONNREFUSED'), 502, 'upstream refused the connection', 'upstream'],
    [withCode('ECONNRESET'), 502, 'upstream closed the connection', 'upstream'],
    [withCode('UND_ERR_SOCKET'), 502, 'upstream closed the connection', 'upstream'],
    [withCode('EPIPE'), 502, 'upstream closed the connection', 'upstream'],
    [withCode('ENOTFOUND'), 502, 'upstream failed: ENOTFOUND', 'upstream'],
    [withCode(undefined, 'something odd'), 502, 'upstream failed: something odd', 'upstream'],
  ];
  for (const [err, status, reason, blame] of cases) {
    const got = classifyFailure(err);
    const label = `${(err as { code?: string }).code ?? err.name}`;
    t.equal(got.status, status, `${label} → ${status}`);
    t.match(got.reason, reason);
    t.equal(got.blame, blame, `${label}: the ${blame}'s fault`);
  }
});

t.test('headerFault: requests refused for their headers before an upstream is chosen', async (t) => {
  const raw = (...pairs: string[]): string[] => pairs;
  const many = Array.from({ length: 2 * (MAX_HEADERS + 1) }, (_, i) => (i % 2 === 0 ? `X-${i}` : '1'));
  const cases: [string[], string, string | undefined, number | undefined][] = [
    [raw('Host', 'h'), '1.1', 'h', undefined],
    [raw(), '1.0', undefined, undefined],
    [raw(), '1.1', undefined, 400],
    [raw('Host', 'a', 'host', 'b'), '1.1', 'a', 400],
    [many.slice(2), '1.1', undefined, 400],
    [['Host', 'h', ...many.slice(4)], '1.1', 'h', undefined],
    [many, '1.1', 'h', 431],
  ];
  for (const [rawHeaders, httpVersion, host, status] of cases) {
    t.equal(headerFault({ rawHeaders, httpVersion }, host)?.[0], status, `${rawHeaders.length / 2} headers, HTTP/${httpVersion}, Host ${host}`);
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
