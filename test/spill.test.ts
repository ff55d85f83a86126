/** The temp-file byte queue both buffers overflow into. */
import { existsSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Capture, MemoryBudget } from '../src/record/recording.js';
import { SpillFile } from '../src/proxy/spill.js';

t.test('bytes come back in the order appended, reads waiting for the disk; the file is 0600 and removed on close', async (t) => {
  const dir = t.testdir({});
  const spill = await SpillFile.create(dir);
  t.equal(statSync(spill.path).mode & 0o777, 0o600);
  t.equal(await spill.read(10), null, 'nothing pending');
  const parts = [Buffer.from('abc'), Buffer.from('defgh'), Buffer.alloc(100_000, 7)];
  // Not awaited: reads must wait for the appends they need.
  const appended = parts.map((p) => spill.append(p));
  t.equal(spill.pending, 100_008);
  const first = await spill.read(4);
  t.same(first, Buffer.from('abcd'), 'a read spans appends');
  const rest: Buffer[] = [];
  for (let c = await spill.read(65_536); c !== null; c = await spill.read(65_536)) rest.push(c);
  await Promise.all(appended);
  t.ok(Buffer.concat([first!, ...rest]).equals(Buffer.concat(parts)), 'everything, in order');
  t.equal(spill.pending, 0);
  await spill.close();
  await spill.close();
  t.notOk(existsSync(spill.path), 'removed, and a second close is harmless');
});

t.test('a file shortened under the queue is an error, not silence; a missing directory fails at once', async (t) => {
  const spill = await SpillFile.create(t.testdir({}));
  await spill.append(Buffer.alloc(1000));
  truncateSync(spill.path, 10);
  await t.rejects(spill.read(1000), { name: 'BufferFailed', message: /shorter than what was written/ });
  await spill.close();
  await t.rejects(SpillFile.create(join(t.testdir({}), 'gone')), { name: 'BufferFailed', message: /cannot buffer in .*gone: ENOENT/ });
});

t.test('Capture: past the memory budget it lets go of everything and takes nothing more', async (t) => {
  const budget = new MemoryBudget(10);
  const capture = new Capture(100, budget);
  capture.add(Buffer.alloc(6));
  t.equal(budget.held, 6);
  capture.add(Buffer.alloc(6));
  t.ok(capture.overBudget);
  t.equal(budget.held, 0, 'released');
  capture.add(Buffer.alloc(1));
  t.equal(budget.held, 0, 'nothing taken after');
  t.equal(capture.hex(), '');
});
