import t from 'tap';
import { argValue, compileKey, cookieValue, DEFAULT_KEY, type RequestFacts } from '../src/proxy/key.js';

const facts: RequestFacts = {
  remoteAddr: '10.1.2.3',
  requestUri: '/p/?id=7&x=1',
  uri: '/p/',
  args: 'id=7&x=1',
  host: 'example.com',
  headers: { 'x-user': 'ann', cookie: 'a=1; sid=s9', 'x-multi': ['1', '2'] },
};

t.test('compileKey evaluates nginx variables', async (t) => {
  const cases: [string, string][] = [
    [DEFAULT_KEY, '10.1.2.3/p/'],
    ['$remote_addr$uri', '10.1.2.3/p/'],
    ['${request_uri}|${args}|${host}', '/p/?id=7&x=1|id=7&x=1|example.com'],
    ['$arg_id-$arg_ID-$arg_nope', '7-7-'],
    ['${http_x_user}${http_X_User}${http_absent}', 'annann'],
    ['$http_x_multi', '1, 2'],
    ['$cookie_sid/$cookie_a/$cookie_none', 's9/1/'],
    ['user:$http_x_user.', 'user:ann.'],
  ];
  for (const [template, want] of cases) t.equal(compileKey(template)(facts), want, template);
});

t.test('compileKey rejects what nginx would', async (t) => {
  const bad: [string, RegExp][] = [
    ['${remote_addr', /missing "}"/],
    ['$', /without a variable name/],
    ['${}', /without a variable name/],
    ['$nope', /unknown variable \$nope/],
    ['$arg_', /unknown variable/],
    ['plain', /uses no variable/],
  ];
  for (const [template, message] of bad) t.throws(() => compileKey(template), { name: 'InputError', field: 'key', message }, template);
});

t.test('argValue follows ngx_http_arg', async (t) => {
  const cases: [string, string, string][] = [
    ['id=1', 'id', '1'],
    ['a=1&id=2&id=3', 'id', '2'],
    ['ID=4', 'id', '4'],
    ['xid=5&id=6', 'id', '6'],
    ['id', 'id', ''],
    ['id=', 'id', ''],
    ['a=1&&id=2', 'id', '2'],
    ['a=id=3', 'id', ''],
    ['', 'id', ''],
    ['id=%41', 'id', '%41'],
  ];
  for (const [args, name, want] of cases) t.equal(argValue(args, name), want, `${args} ${name}`);
});

t.test('cookieValue follows nginx cookie parsing', async (t) => {
  const cases: [string | undefined, string, string][] = [
    [undefined, 'sid', ''],
    ['sid=1', 'sid', '1'],
    ['a=1; sid=xyz; b=2', 'sid', 'xyz'],
    ['SID=up', 'sid', 'up'],
    ['sid =  sp', 'sid', 'sp'],
    ['sid=', 'sid', ''],
    ['xsid=1; sid=2', 'sid', '2'],
    ['a=1, sid=3', 'sid', '3'],
    ['sid', 'sid', ''],
    ['sidx=1', 'sid', ''],
    ['a=x,y; sid=4', 'sid', '4'],
  ];
  for (const [cookie, name, want] of cases) t.equal(cookieValue(cookie, name), want, `${cookie} ${name}`);
});
