import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFileStateStore } from '../../src/deployer/file-state-store.js';
import { type DeployerState, emptyState, type StateStore } from '../../src/deployer/state.js';
import { isDeployError } from '../../src/errors.js';
import { createMemoryStateStore } from '../../src/testing/index.js';
import { storePath } from '../builders.js';

const state = (): DeployerState => ({
  ...emptyState('biz'),
  manifest: { etag: '"abc"', generation: '2025-01-15T12:34:56Z', appliedAt: '2025-01-15T12:35:00Z' },
  services: {
    web: {
      storePath: storePath('web-1'),
      unitName: 'omni-web.service',
      unitText: '[Service]\nExecStart=/x\n',
      specHash: 'h1',
      route: { '@id': 'omni-deploy:web' },
      health: 'healthy',
      since: '2025-01-15T12:35:00Z',
      previous: { storePath: storePath('web-0'), unitText: '[Service]\n', specHash: 'h0' },
    },
  },
  failures: [{ service: 'web', storePath: storePath('web-2'), specHash: 'h2', at: 'x', reason: 'exit 1' }],
  lastTick: { at: 'x', outcome: 'applied' },
  rollbacks: 1,
});

function contract(name: string, make: () => StateStore) {
  describe(`StateStore contract: ${name}`, () => {
    it('has no state at first, then returns what was saved, last save wins', async () => {
      const store = make();
      expect(await store.load()).toBeUndefined();
      await store.save(emptyState('biz'));
      await store.save(state());
      expect(await store.load()).toEqual(state());
    });

    it('returns copies: mutating a loaded state changes nothing stored', async () => {
      const store = make();
      await store.save(state());
      const loaded = (await store.load()) as DeployerState;
      loaded.services = {};
      expect((await store.load())?.services.web).toBeDefined();
    });
  });
}

const dir = () => mkdtempSync(join(tmpdir(), 'omni-state-'));
contract('createFileStateStore', () => createFileStateStore(join(dir(), 'nested', 'state.json')));
contract('createMemoryStateStore', () => createMemoryStateStore());

describe('createFileStateStore', () => {
  it('writes owner-only files and leaves no temp files behind', async () => {
    const d = dir();
    await createFileStateStore(join(d, 'state.json')).save(state());
    expect(readdirSync(d)).toEqual(['state.json']);
    expect(statSync(join(d, 'state.json')).mode & 0o777).toBe(0o600);
  });

  it('ignores a temp file left by a crash before the rename: the old state stays whole', async () => {
    const d = dir();
    const store = createFileStateStore(join(d, 'state.json'));
    await store.save(state());
    writeFileSync(join(d, 'state.json.999.tmp'), '{"version": 1, "ho');
    expect(await store.load()).toEqual(state());
  });

  it.each([
    ['torn JSON', '{"version": 1, "ho', 'not valid JSON'],
    [
      'wrong shape',
      JSON.stringify({
        version: 1,
        host: 'biz',
        services: { web: { storePath: 1 } },
        failures: [],
        rollbacks: 0,
      }),
      'services.web.storePath',
    ],
    ['future version', JSON.stringify({ ...emptyState('biz'), version: 2 }), 'version'],
  ])('refuses a damaged state file (%s), naming the file and field', async (_name, body, fragment) => {
    const path = join(dir(), 'state.json');
    writeFileSync(path, body);
    const error = await createFileStateStore(path)
      .load()
      .catch((e) => e);
    expect(isDeployError(error, 'STATE_INVALID')).toBe(true);
    expect(error.message).toContain(path);
    expect(error.message).toContain(fragment);
  });
});
