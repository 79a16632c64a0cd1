import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFileLock } from '../../src/deployer/lock.js';
import { createFakeLock } from '../../src/testing/index.js';
import { lockContract } from './lock-contract.js';

const dir = () => mkdtempSync(join(tmpdir(), 'omni-lock-'));

lockContract('createFileLock', () => {
  const path = join(dir(), 'deployer.lock');
  return {
    first: createFileLock(path),
    second: createFileLock(path),
    abandon: async () => {
      const body = JSON.parse(readFileSync(path, 'utf8'));
      writeFileSync(path, JSON.stringify({ ...body, pid: 2 ** 22 + 17 }));
    },
  };
});

lockContract('createFakeLock', () => {
  const first = createFakeLock();
  return { first, second: first.share(), abandon: async () => first.abandon() };
});

describe('createFileLock', () => {
  it('gives the lock to one holder at a time and frees it on release', async () => {
    const path = join(dir(), 'sub', 'deployer.lock');
    const a = createFileLock(path);
    const b = createFileLock(path);
    const held = await a.acquire();
    expect(held).toBeDefined();
    expect(await b.acquire()).toBeUndefined();
    expect((await b.owner())?.pid).toBe(process.pid);
    await held?.release();
    const again = await b.acquire();
    expect(again).toBeDefined();
    await again?.release();
  });

  it('takes over a lock left by a dead process', async () => {
    const path = join(dir(), 'deployer.lock');
    const child = spawn(process.execPath, ['-e', '0']);
    const deadPid = child.pid as number;
    await new Promise((resolve) => child.on('exit', resolve));
    writeFileSync(
      path,
      JSON.stringify({ pid: deadPid, startTime: '1', acquiredAt: '2025-01-01T00:00:00Z', token: 'old' }),
    );
    const held = await createFileLock(path).acquire();
    expect(held).toBeDefined();
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
  });

  it('treats a live PID with another start time as a reused PID, hence stale', async () => {
    const path = join(dir(), 'deployer.lock');
    writeFileSync(
      path,
      JSON.stringify({ pid: process.pid, startTime: 'not-our-start-time', acquiredAt: 'x', token: 'old' }),
    );
    expect(await createFileLock(path).acquire()).toBeDefined();
  });

  it('takes over a torn lock file', async () => {
    const path = join(dir(), 'deployer.lock');
    writeFileSync(path, '{"pid": 12');
    expect(await createFileLock(path).acquire()).toBeDefined();
  });

  it('lets exactly one of two simultaneous takeovers win', async () => {
    for (let round = 0; round < 25; round++) {
      const path = join(dir(), 'deployer.lock');
      writeFileSync(path, JSON.stringify({ pid: -5, startTime: null, acquiredAt: 'x', token: 'dead' }));
      // The racers are alive (to each other); only the original owner is dead.
      const isAlive = (o: { pid: number }) => o.pid === 1001 || o.pid === 1002;
      const results = await Promise.all([
        createFileLock(path, { pid: 1001, isAlive }).acquire(),
        createFileLock(path, { pid: 1002, isAlive }).acquire(),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(existsSync(`${path}.takeover`)).toBe(false);
    }
  });

  it('release does not remove a lock someone else has taken over', async () => {
    const path = join(dir(), 'deployer.lock');
    const held = await createFileLock(path).acquire();
    writeFileSync(path, JSON.stringify({ pid: 4242, startTime: null, acquiredAt: 'x', token: 'other' }));
    await held?.release();
    expect(JSON.parse(readFileSync(path, 'utf8')).token).toBe('other');
  });
});
