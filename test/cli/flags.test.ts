import { describe, expect, it } from 'vitest';
import {
  type CommandDef,
  commandFlags,
  type FlagLine,
  type ProgramDef,
  parseCommandLine,
} from '../../src/cli/command.js';
import { DEPLOYER, runDeployer } from '../../src/cli/deployer.js';
import { loadSettings } from '../../src/cli/deployer-run.js';
import type { CliIo } from '../../src/cli/io.js';
import { loadPushSettings, PUSH, runPush } from '../../src/cli/push.js';
import type { OptionKind } from '../../src/options.js';

const KEY = 'cache-1:2oVYmCfS6Vd0z2eA1+Kq5pFfD0x3cN8k9YrJ8w7T6Qs=';
const CONFIG = '/srv/config.json';

/** A valid value of each kind on the command line, and what it becomes. */
const SAMPLES: Record<OptionKind, { argv: string[]; value: unknown }> = {
  string: { argv: ['x-value'], value: 'x-value' },
  path: { argv: ['/srv/x'], value: '/srv/x' },
  location: { argv: ['file:///srv/m.json'], value: 'file:///srv/m.json' },
  'key-file': { argv: ['/srv/key'], value: { type: 'file', path: '/srv/key' } },
  list: { argv: [KEY], value: [KEY] },
  strings: { argv: [':443'], value: [':443'] },
  count: { argv: ['3'], value: 3 },
  duration: { argv: ['7s'], value: 7000 },
  boolean: { argv: [], value: true },
  host: { argv: ['web-1'], value: 'web-1' },
  format: { argv: ['json'], value: 'json' },
};

/** In-memory process: only the config file exists; every read is recorded. */
function fakeIo(env: Record<string, string> = {}) {
  const out = { stdout: '', stderr: '', reads: [] as string[] };
  const io: CliIo = {
    stdout: (t) => {
      out.stdout += t;
    },
    stderr: (t) => {
      out.stderr += t;
    },
    readText: async (path) => {
      out.reads.push(path);
      if (path === CONFIG) return '{}';
      throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    },
    hostname: () => 'biz',
    cwd: () => '/work',
    env,
    isTTY: false,
  };
  return { io, out };
}

type Program = {
  def: ProgramDef;
  run: (argv: string[], io: CliIo, createContext: () => never) => Promise<number>;
  /** Enough environment for every command to get past its required settings. */
  env: Record<string, string>;
  load: (input: ReturnType<typeof parseCommandLine>) => Promise<Record<string, unknown>>;
};

const PROGRAMS: Program[] = [
  {
    def: DEPLOYER as ProgramDef,
    run: (argv, io, createContext) => runDeployer(argv, io, { createContext }),
    env: { DEPLOYER_MANIFEST: 'file:///srv/m.json', DEPLOYER_INSECURE_ALLOW_UNSIGNED: 'true' },
    load: async (input) => ({ ...(await loadSettings(input, true)) }),
  },
  {
    def: PUSH as ProgramDef,
    run: (argv, io, createContext) => runPush(argv, io, { createContext }),
    env: { PUSH_MANIFEST: 'file:///srv/m.json' },
    load: async (input) => ({ ...(await loadPushSettings(input)) }),
  },
];

const flagArgv = (line: FlagLine) => [
  `--${line.flag}`,
  ...(line.flag === 'config' ? [CONFIG] : SAMPLES[line.kind].argv),
];
const argsOf = (command: CommandDef) => (command.args ?? []).map(() => 'web');

describe.each(PROGRAMS)('$def.name: every subcommand takes exactly its own flags', (program) => {
  const { def } = program;
  const all = [
    ...new Map(def.commands.flatMap((c) => commandFlags(def, c)).map((l) => [l.flag, l])).values(),
  ];
  const refused = def.commands.flatMap((command) =>
    all
      .filter((line) => !commandFlags(def, command).some((l) => l.flag === line.flag))
      .map((line) => [command.name, line.flag, command, line] as const),
  );
  const taken = def.commands.flatMap((command) =>
    commandFlags(def, command)
      .filter((line) => line.flag !== 'help')
      .map((line) => [command.name, line.flag, command, line] as const),
  );

  it('the tables cover every command and every flag', () => {
    expect(new Set(taken.map(([c]) => c))).toEqual(new Set(def.commands.map((c) => c.name)));
    expect(new Set([...refused, ...taken].map(([, f]) => f))).toEqual(
      new Set(all.filter((l) => l.flag !== 'help').map((l) => l.flag)),
    );
    expect(refused.length).toBeGreaterThan(def.commands.length);
  });

  it.each(refused)(
    `${def.name} %s refuses --%s: exit 2, the flag named, nothing run`,
    async (name, flag, command, line) => {
      const { io, out } = fakeIo(program.env);
      let created = false;
      const code = await program.run([name, ...argsOf(command), ...flagArgv(line)], io, () => {
        created = true;
        throw new Error('no context may be created');
      });
      expect(code).toBe(2);
      expect(out.stderr).toMatch(
        new RegExp(`^${def.name} ${name}: unknown flag --${flag} \\(a flag of ${def.name} `),
      );
      expect(out.stderr).toContain(`\nRun ${def.name} ${name} --help for usage.\n`);
      expect(created).toBe(false);
      expect(out.reads).toEqual([]);
      expect(out.stdout).toBe('');
    },
  );

  it.each(taken)(`${def.name} %s takes --%s`, async (_name, _flag, command, line) => {
    const { io, out } = fakeIo(program.env);
    const input = parseCommandLine(def, command, [...argsOf(command), ...flagArgv(line)], io);
    if (line.flag === 'config') {
      expect(input.settingFlags.config).toBe(CONFIG);
      await program.load(input);
      expect(out.reads).toEqual([CONFIG]);
    } else if (line.setting) {
      // Given raw to the loader, which resolves it over environment and config file.
      expect(input.settingFlags[line.flag]).toEqual(
        line.kind === 'boolean'
          ? true
          : line.kind === 'list' || line.kind === 'strings'
            ? SAMPLES[line.kind].argv
            : SAMPLES[line.kind].argv[0],
      );
      const settings = await program.load(input);
      expect(settings[line.setting.key]).toEqual(SAMPLES[line.kind].value);
    } else {
      expect((input.flags as Record<string, unknown>)[line.flag]).toEqual(SAMPLES[line.kind].value);
    }
  });
});

describe('flags in the wrong place, as the issue reported them', () => {
  it('push history --apply --steps 3 --target x: exit 2 naming --apply, the first', async () => {
    const { io, out } = fakeIo({ PUSH_MANIFEST: 'file:///srv/m.json' });
    expect(
      await runPush(['history', '--apply', '--steps', '3', '--target', 'x'], io, {
        createContext: () => {
          throw new Error('ran');
        },
      }),
    ).toBe(2);
    expect(out.stderr).toBe(
      'push history: unknown flag --apply (a flag of push gc); push history takes --limit, --json, --config, --manifest\nRun push history --help for usage.\n',
    );
  });

  it('deployer validate m.json --units-out X --previous /nonexistent: exit 2 naming --units-out', async () => {
    const { io, out } = fakeIo();
    expect(
      await runDeployer(['validate', 'm.json', '--units-out', 'X', '--previous', '/nonexistent'], io),
    ).toBe(2);
    expect(out.stderr).toMatch(/^deployer validate: unknown flag --units-out \(a flag of deployer plan\)/);
    expect(out.reads).toEqual([]);
  });

  it('a short flag another command takes, a flag no command takes, a missing value', async () => {
    const cases: [string[], string][] = [
      [
        ['validate', 'm.json', '-v'],
        'deployer validate: unknown flag -v (a flag of deployer apply, deployer watch)',
      ],
      [
        ['status', '--frobnicate'],
        'deployer status: unknown flag --frobnicate; deployer status takes --json, --config, --state-dir',
      ],
      [['plan', '--manifest'], 'deployer plan: --manifest needs a value'],
      [
        ['plan', '--manifest', '--json'],
        'deployer plan: --manifest needs a value; to give one that starts with "-", write --manifest=VALUE',
      ],
      [['status', '--json=yes'], 'deployer status: --json takes no value'],
      [['status', '--no-state-dir'], 'deployer status: unknown flag --no-state-dir'],
      [['status', 'extra'], 'deployer status: unexpected argument "extra" (it takes none)'],
      [
        ['--state-dir', '/x', 'status'],
        'deployer: --state-dir: a command comes first (validate, plan, apply, watch, status, caddy-config)',
      ],
    ];
    for (const [argv, message] of cases) {
      const { io, out } = fakeIo();
      expect(await runDeployer(argv, io), argv.join(' ')).toBe(2);
      expect(out.stderr.split('\n')[0], argv.join(' ')).toContain(message);
    }
  });
});

describe('help and version run nothing', () => {
  it.each(PROGRAMS.flatMap((p) => p.def.commands.map((c) => [p.def.name, c.name, p, c] as const)))(
    "%s %s --help prints that command's help, even after a bad flag",
    async (program, name, p, command) => {
      for (const argv of [
        [name, '--bogus', '--help'],
        [name, '-h'],
        ['help', name],
      ]) {
        const { io, out } = fakeIo(p.env);
        const code = await p.run(argv, io, () => {
          throw new Error('ran');
        });
        expect(code).toBe(0);
        expect(
          out.stdout.startsWith(`${program} ${name}: ${command.summary}\n\nUsage: ${program} ${name}`),
        ).toBe(true);
        for (const line of commandFlags(p.def, command)) expect(out.stdout).toContain(`--${line.flag}`);
        expect(out.reads).toEqual([]);
      }
    },
  );

  it('--help after -- is an argument, not a request for help', async () => {
    const { io, out } = fakeIo();
    expect(await runDeployer(['validate', '--', '--help'], io)).toBe(2);
    expect(out.stderr).toBe('deployer: cannot read --help: ENOENT\n');
  });

  it('deployer --version, push --version; help of an unknown command is a usage error', async () => {
    for (const p of PROGRAMS) {
      const { io, out } = fakeIo();
      expect(await p.run(['--version'], io, () => undefined as never)).toBe(0);
      expect(out.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
      const bad = fakeIo();
      expect(await p.run(['help', 'frobnicate'], bad.io, () => undefined as never)).toBe(2);
      expect(bad.out.stderr).toContain(`${p.def.name}: unknown command "frobnicate"`);
    }
  });
});

describe('on/off settings', () => {
  it('--no-<flag> turns off what the environment turned on', async () => {
    const { io, out } = fakeIo({
      DEPLOYER_MANIFEST: 'file:///srv/m.json',
      DEPLOYER_INSECURE_ALLOW_UNSIGNED: 'true',
    });
    expect(await runDeployer(['apply', '--no-insecure-allow-unsigned'], io)).toBe(2);
    expect(out.stderr).toContain('--trusted-public-key: at least one trusted public key is required');
  });
});
