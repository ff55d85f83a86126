/** Small pure decisions on the request path, as tables. */
import t from 'tap';
import { ERRORS, type ErrorName } from '../src/common/errors.js';
import { headerFault, MAX_HEADERS, plainAddress } from '../src/proxy/handler.js';
import { BodyTooLarge, BufferFailed, classifyFailure, type Blame } from '../src/proxy/forward.js';

const withCode = (code: string | undefined, message = 'x'): Error => Object.assign(new Error(message), { code });

t.test('classifyFailure: what the client hears for each failure, and whose fault it is', async (t) => {
  const cases: [Error, ErrorName, number, string | RegExp, Blame][] = [
    [new BodyTooLarge('request body is over the limit of 10 bytes'), 'payload_too_large', 413, 'request body is over the limit of 10 bytes', 'client'],
    [new BufferFailed('cannot buffer: ENOSPC'), 'buffer_failed', 500, 'cannot buffer: ENOSPC', 'proxy'],
    [withCode('UND_ERR_INVALID_ARG', 'duplicate host header'), 'bad_request', 400, 'request cannot be forwarded: duplicate host header', 'client'],
    [withCode('UND_ERR_NOT_SUPPORTED', 'x'), 'bad_request', 400, /cannot be forwarded/, 'client'],
    [withCode('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'x'), 'bad_request', 400, /cannot be forwarded/, 'client'],
    [withCode('UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'x'), 'bad_gateway', 502, 'upstream failed: UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'upstream'],
    [withCode('UND_ERR_HEADERS_TIMEOUT'), 'gateway_timeout', 504, 'upstream timed out', 'upstream'],
    [withCode('UND_ERR_BODY_TIMEOUT'), 'gateway_timeout', 504, 'upstream timed out', 'upstream'],
    [withCode('UND_ERR_CONNECT_TIMEOUT'), 'gateway_timeout', 504, 'upstream timed out', 'upstream'],
    [withCode('ECONNREFUSED'), 'bad_gateway', 502, 'upstream refused the connection', 'upstream'],
    // TLS: the upstream's certificate not trusted, expired, or for another name.
    [withCode('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'), 'bad_gateway', 502, "upstream's TLS certificate not accepted: unable to verify the first certificate (its CA: --upstream-ca)", 'upstream'],
    [withCode('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'), 'bad_gateway', 502, /^upstream's TLS certificate not accepted: self-signed/, 'upstream'],
    [withCode('CERT_HAS_EXPIRED', 'certificate has expired'), 'bad_gateway', 502, /^upstream's TLS certificate not accepted: certificate has expired/, 'upstream'],
    [withCode('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"), 'bad_gateway', 502, /^upstream's TLS certificate not accepted: Hostname/, 'upstream'],
    [withCode('ECONNRESET'), 'bad_gateway', 502, 'upstream closed the connection', 'upstream'],
    [withCode('UND_ERR_SOCKET'), 'bad_gateway', 502, 'upstream closed the connection', 'upstream'],
    [withCode('EPIPE'), 'bad_gateway', 502, 'upstream closed the connection', 'upstream'],
    [withCode('ENOTFOUND'), 'bad_gateway', 502, 'upstream failed: ENOTFOUND', 'upstream'],
    [withCode(undefined, 'something odd'), 'bad_gateway', 502, 'upstream failed: something odd', 'upstream'],
  ];
  for (const [err, name, status, reason, blame] of cases) {
    const got = classifyFailure(err);
    const label = `${(err as { code?: string }).code ?? err.name}`;
    t.equal(got.error, name, `${label} → ${name}`);
    t.equal(ERRORS[got.error].status, status, `${label} → ${status}`);
    t.match(got.reason, reason);
    t.equal(got.blame, blame, `${label}: the ${blame}'s fault`);
  }
});

t.test('headerFault: requests refused for their headers before an upstream is chosen', async (t) => {
  const raw = (...pairs: string[]): string[] => pairs;
  const many = Array.from({ length: 2 * (MAX_HEADERS + 1) }, (_, i) => (i % 2 === 0 ? `X-${i}` : '1'));
  const cases: [string[], string, string | undefined, ErrorName | undefined][] = [
    [raw('Host', 'h'), '1.1', 'h', undefined],
    [raw(), '1.0', undefined, undefined],
    [raw(), '1.1', undefined, 'bad_request'],
    [raw('Host', 'a', 'host', 'b'), '1.1', 'a', 'bad_request'],
    [many.slice(2), '1.1', undefined, 'bad_request'],
    [['Host', 'h', ...many.slice(4)], '1.1', 'h', undefined],
    [many, '1.1', 'h', 'too_many_headers'],
  ];
  for (const [rawHeaders, httpVersion, host, name] of cases) {
    t.equal(headerFault({ rawHeaders, httpVersion }, host)?.[0], name, `${rawHeaders.length / 2} headers, HTTP/${httpVersion}, Host ${host}`);
  }
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
