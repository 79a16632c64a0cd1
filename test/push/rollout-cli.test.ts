import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { runPush } from '../../src/cli/push.js';
import { type Manifest, parseManifest } from '../../src/manifest/index.js';
import type { PushContext } from '../../src/push/context.js';
import { writeServiceChange } from '../../src/push/manifest-change.js';
import { openPushedManifest } from '../../src/push/signing.js';
import { createFakeNix, createFakeShell } from '../../src/testing/index.js';
import { createFakeFleet, type FakeFleet, webSpec } from './fake-fleet.js';

/** `push` against a fleet of fake hosts: spec and key in /repo/deploy, the fleet's bucket and clock. */
async function cli() {
  const fleet = await createFakeFleet();
  const ctx: PushContext = { ...fleet.ctx, cache: undefined, nix: createFakeNix(), shell: createFakeShell() };
  const files: Record<string, string> = {
    'deploy/web.json': JSON.stringify(webSpec(['a', 'b', 'c'])),
    'deploy/push.sk': `${fleet.signing.secretKey}\n`,
  };
  const run = async (argv: string[]) => {
    const out = { stdout: '', stderr: '' };
    const io: CliIo = {
      stdout: (t) => {
        out.stdout += t;
      },
      stderr: (t) => {
        out.stderr += t;
      },
      readText: async (path) => {
        const text = files[path.startsWith('/repo/') ? path.slice('/repo/'.length) : path];
        if (text === undefined) throw Object.assign(new Error(path), { code: 'ENOENT' });
        return text;
      },
      hostname: () => 'dev',
      cwd: () => '/repo',
      env: { NIX_CACHE_KEY: '/repo/deploy/push.sk' },
      isTTY: false,
    };
    const poll = argv[0] === 'deploy' ? ['--poll', '1s'] : [];
    const code = await runPush([...argv, '--manifest', 'x', ...poll], io, {
      // push's own event lines, and the fleet's record of them.
      createContext: (_settings, onEvent) => ({
        ...ctx,
        onEvent: (e) => {
          fleet.events.push(e);
          onEvent(e);
        },
      }),
    });
    return { code, ...out };
  };
  const v1 = await fleet.build('web-1');
  await writeServiceChange(ctx, { spec: webSpec(['a', 'b', 'c']), storePath: v1 }, fleet);
  await fleet.tick();
  return { fleet, ctx, run, v1 };
}

async function current(fleet: FakeFleet): Promise<Manifest> {
  const read = await fleet.ctx.manifests.read();
  if (read.status !== 'found') throw new Error('no manifest');
  const parsed = parseManifest(openPushedManifest(read.text, 'manifest', 'unverified').payload);
  if (!parsed.ok) throw new Error('invalid');
  return parsed.manifest;
}

const rollout = [
  '--canary',
  '1',
  '--max-parallel',
  '1',
  '--min-healthy-time',
  '5s',
  '--healthy-deadline',
  '1m',
];

describe('push deploy --canary (a staged rollout from the command line)', () => {
  it('rolls a good version out wave by wave and prints every host', async () => {
    const { fleet, run } = await cli();
    const v2 = await fleet.build('web-2');
    const r = await run(['deploy', 'web', '--store-path', v2, '--revision', 'r2', ...rollout]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /rollout of web to web-2 in 3 wave\(s\): a \| b \| c \(--canary 1 --max-parallel 1 --min-healthy-time 5s --healthy-deadline 1m\)/,
    );
    expect(r.stderr).toMatch(/wave 2 of 3: b → web-2 \(a healthy for 5s\)/);
    expect(r.stdout).toMatch(
      /rollout of web: 3 of 3 hosts on web-2 \(r2\), done \(wave 3 of 3, started \S+\): c healthy for 5s/,
    );
    expect(r.stdout).toMatch(
      /HOST +WAVE +VERSION +STATE +DETAIL\na +1 +new +healthy +web web-2 healthy\nb +2 +new/,
    );
    const status = await run(['status']);
    expect(status.stdout.split('\n')[0]).toMatch(/^rollout of web: 3 of 3 hosts on web-2 \(r2\), done/);
  });

  it('a broken version with --canary 1: one host tries it, the rollout halts and reverts, exit 1 with the table', async () => {
    const { fleet, run, v1 } = await cli();
    const broken = await fleet.build('web-2');
    fleet.crash(broken);
    const r = await run([
      'deploy',
      'web',
      '--store-path',
      broken,
      '--canary',
      '1',
      '--min-healthy-time',
      '5s',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /rollout of web: 0 of 3 hosts on web-2, reverted \(wave 1 of 2, started \S+\): halted: a: tried web-2 and rolled back/,
    );
    expect(r.stdout).toMatch(
      /\na +1 +previous +reverted +failed: tried web-2 .*; then put back: web web-1 healthy\nb +2 +previous +not switched/,
    );
    expect(fleet.fetched(broken)).toEqual(['a']);
    expect(fleet.running('web')).toEqual({ a: v1, b: v1, c: v1 });
  });

  it('push status shows an interrupted rollout; push deploy again resumes it', async () => {
    const { fleet, run } = await cli();
    const v2 = await fleet.build('web-2');
    fleet.beforeTicks = (round) => {
      if (round === 3) throw new Error('laptop closed');
    };
    await expect(run(['deploy', 'web', '--store-path', v2, ...rollout])).rejects.toThrow('laptop closed');
    fleet.beforeTicks = undefined;
    const status = await run(['status']);
    expect(status.stdout.split('\n')[0]).toBe(
      `rollout of web: 1 of 3 hosts on web-2, in progress (wave 1 of 3, started ${(await current(fleet)).rollout?.startedAt}); push deploy web --store-path ${v2} resumes it, push rollback ends it`,
    );
    expect(status.stdout).toMatch(/HOST +GENERATION/);
    // Timing flags may change on resume; the waves may not.
    const moved = await run(['deploy', 'web', '--store-path', v2, '--canary', '2']);
    expect(moved.code).toBe(1);
    expect(moved.stderr).toMatch(
      /cannot be resumed as asked; nothing was written:\n {2}it was started with --canary 1 --max-parallel 1/,
    );
    const resumed = await run(['deploy', 'web', '--store-path', v2, '--min-healthy-time', '2s']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming: rollout of web: 1 of 3 hosts on web-2, in progress/);
    expect((await current(fleet)).rollout).toMatchObject({
      state: 'done',
      parameters: { minHealthyTimeMs: 2000 },
    });
  });

  it('another version while a rollout is open is refused, naming the way out; push rollback --service ends it', async () => {
    const { fleet, run, v1 } = await cli();
    const broken = await fleet.build('web-2');
    const v3 = await fleet.build('web-3');
    fleet.crash(broken);
    expect(
      (await run(['deploy', 'web', '--store-path', broken, '--canary', '1', '--no-auto-revert'])).code,
    ).toBe(1);
    expect((await current(fleet)).rollout?.state).toBe('halted');
    const plain = await run(['deploy', 'web', '--store-path', v3]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(
      /rollout of web: 1 of 3 hosts on web-2, halted .*this push has .*-web-3: end the open rollout first \(push rollback\)/,
    );
    const back = await run(['rollback', '--service', 'web']);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toMatch(
      /^restored web \(only\) of \S+ \(generation \S+\) as generation \S+, signed by test-1\nended the rollout of web \(it was halted\)\n$/,
    );
    expect((await current(fleet)).services.map((s) => [s.artifact.storePath, s.hosts])).toEqual([
      [v1, ['a', 'b', 'c']],
    ]);
    const history = await run(['history']);
    expect(history.stdout.split('\n')[1]).toMatch(
      /^current +\S+ \(rollback of web to \S+\) \(rollout of web → web-2: 0 of 3 hosts, rolled back\) +-$/,
    );
    expect(history.stdout).toMatch(
      /\(rollout of web → web-2: 1 of 3 hosts, halted; a wave, not a rollback point\)/,
    );
  });

  it('--plan shows the waves and the first wave, and writes nothing', async () => {
    const { fleet, run } = await cli();
    const v2 = await fleet.build('web-2');
    const before = await fleet.ctx.manifests.read();
    const r = await run(['deploy', 'web', '--store-path', v2, '--canary-hosts', 'b', '--plan']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /staged rollout in 2 wave\(s\): b \| a, c \(--canary-hosts b --min-healthy-time 10s --healthy-deadline 5m\); the first wave:/,
    );
    expect(r.stdout).toMatch(/~ web +\S+-web-1 → \S+-web-2; fields: hosts/);
    expect(r.stdout).toMatch(/host a, .*: 0 to install, 0 to update, 0 to remove, 1 unchanged/);
    expect(r.stdout).toMatch(/host b, .*: 0 to install, 1 to update, 0 to remove, 0 unchanged/);
    expect(await fleet.ctx.manifests.read()).toEqual(before);
  });

  it.each([
    [
      ['--min-healthy-time', '5s'],
      /are for a staged rollout: add --canary N, --canary-hosts or --max-parallel/,
    ],
    [['--no-auto-revert'], /are for a staged rollout/],
    [['--canary', '1', '--canary-hosts', 'a'], /give --canary or --canary-hosts, not both/],
    [['--canary-hosts', 'a,,b c'], /--canary-hosts: expected host names separated by commas, found "a,,b c"/],
    [['--canary-hosts', 'z'], /--canary-hosts: z is not among the service's hosts \(a, b, c\)/],
    [['--canary', '0'], /--canary: expected an integer from 1 to 1000, found "0"/],
    [['--healthy-deadline', 'soon', '--canary', '1'], /--healthy-deadline: expected a duration/],
  ])('%j is a usage error that writes nothing', async (flags, message) => {
    const { fleet, run } = await cli();
    const v2 = await fleet.build('web-2');
    const before = await fleet.ctx.manifests.read();
    const r = await run(['deploy', 'web', '--store-path', v2, ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(await fleet.ctx.manifests.read()).toEqual(before);
  });
});
