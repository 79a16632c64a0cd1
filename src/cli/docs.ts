import {
  type CommandDef,
  commandFlags,
  commandSettings,
  type ProgramDef,
  renderDefault,
  renderSynopsis,
} from './command.js';

/** Where the reference is written, relative to the repository root. */
export const CLI_DOCS_FILE = 'docs/cli.md';

/** A table cell: pipes escaped (GitHub tables split on them even inside code), no line breaks. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

/** Prose from a definition: `<service>` would be read as an HTML tag. */
function prose(text: string): string {
  return text.replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function code(text: string): string {
  return `\`${text}\``;
}

/** A Markdown table, columns padded as Biome's formatter pads them (so `biome check` leaves the file alone). */
function table(head: string[], rows: string[][]): string {
  const cells = rows.map((r) => r.map(cell));
  const widths = head.map((h, i) => Math.max(3, h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** GitHub's heading anchor for `deployer plan`. */
function anchor(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replaceAll(' ', '-');
}

const CONVENTIONS = `## Conventions of both programs

- **A command takes only the flags it lists.** Any other flag is a usage error (exit 2) that names the flag and
  the commands that do take it, e.g. \`push history: unknown flag --apply (a flag of push gc)\`. A missing or
  extra argument is a usage error too.
- **Help runs nothing.** \`--help\` or \`-h\` after a command prints that command's help (\`help <command>\` does the
  same); \`--help\` alone lists the commands; \`--version\` prints the version.
- **Settings** come from their flag, else their environment variable, else the config file, else their default.
  A config-file key that is no setting is an error, so a typo is never ignored. A command reads only the settings
  it lists; the config file may hold the others (one file serves every command).
- **On/off settings** are turned on by \`--flag\` and off by \`--no-flag\`, over the environment and the config file;
  the environment and the config file say \`true\`/\`false\` (or \`1\`/\`0\`, \`yes\`/\`no\`).
- **Durations** are written \`500ms\`, \`5s\`, \`1m30s\` or \`2h\`; a bare number is seconds.
- **Paths.** A relative path in a flag or an environment variable is relative to the working directory; a relative
  path in the config file is relative to the config file's directory. Directories and files of settings must
  resolve to plain segments (letters, digits, \`.\`, \`_\`, \`+\`, \`-\`). A location (\`--manifest\`, \`--cache\`) is an
  \`s3://\` URL, a \`file:///\` URL (always absolute, as URLs are) or a path.
- **The signing key (push).** \`--key-file\` takes a file holding the Nix secret key, or \`-\` to read the key from
  standard input. A value that looks like the key itself is refused, without being shown: a key on the command
  line is visible to every user in \`ps\`, and a config file is often committed. Where a secret store provides
  the key itself (CI), put it in the environment variable \`NIX_CACHE_KEY\`: the whole line \`name:base64\` as
  \`nix-store --generate-binary-cache-key\` writes it (the environment of a process is not shown by \`ps\`).
  \`NIX_CACHE_KEY\` may instead hold the path of the key file. A key from the environment or standard input is
  written to a private temporary file (mode 0600) for signing and removed right after; it is never printed or
  uploaded.`;

function renderCommand(program: ProgramDef, command: CommandDef): string {
  const rows = [
    ...(command.args ?? []).map((a) => [code(`<${a.name}>`), prose(a.description)]),
    ...commandFlags(program, command)
      .filter((l) => !l.setting)
      .map((l) => [
        code(`${l.short ? `-${l.short}, ` : ''}--${l.flag}${l.value ? ` ${l.value}` : ''}`),
        prose(l.description),
      ]),
  ];
  const settings = commandSettings(program, command).map(
    (s) => `[${code(`--${s.flag}`)}](#${anchor(`${program.name} settings`)})`,
  );
  return [
    `### ${program.name} ${command.name}`,
    '',
    '```',
    renderSynopsis(program, command),
    '```',
    '',
    prose(command.description),
    '',
    table(['Argument or flag', 'Description'], rows),
    '',
    `Settings: ${settings.length ? settings.join(', ') : 'none (it reads no environment variable and no config file)'}.`,
  ].join('\n');
}

function renderSettings(program: ProgramDef): string {
  const rows = program.settings.map((s) => {
    const readers = program.commands.filter((c) => c.settings?.includes(s.key)).map((c) => c.name);
    return [
      code(`--${s.flag}${s.value ? ` ${s.value}` : ''}`),
      code(s.env),
      code(s.key),
      s.required ? 'required' : prose(renderDefault(s) ?? ''),
      readers.join(', '),
      prose(s.description),
    ];
  });
  return [
    `### ${program.name} settings`,
    '',
    `Config file: \`--config FILE\`, else \`${program.config.env}\`, else \`${program.config.default}\` if it exists (a JSON object whose keys are the config keys below).`,
    ...(program.config.keys ?? []).flatMap((k) => [
      '',
      `The config file also takes ${code(k.key)} (no flag, no environment variable): ${k.description}`,
    ]),
    '',
    table(['Flag', 'Environment', 'Config key', 'Default', 'Read by', 'Description'], rows),
  ].join('\n');
}

function renderProgram(program: ProgramDef): string {
  const commands = program.commands.map((c) => [
    `[${code(`${program.name} ${c.name}`)}](#${anchor(`${program.name} ${c.name}`)})`,
    prose(c.summary),
  ]);
  return [
    `## ${program.name}`,
    '',
    `${program.summary[0]?.toUpperCase()}${program.summary.slice(1)}.`,
    '',
    table(['Command', 'What it does'], commands),
    '',
    'Exit codes:',
    '',
    table(
      ['Code', 'Meaning'],
      program.exitCodes.map((e) => [String(e.code), e.meaning]),
    ),
    '',
    ...program.commands.flatMap((c) => [renderCommand(program, c), '']),
    renderSettings(program),
  ].join('\n');
}

/**
 * docs/cli.md: every command of the programs with its arguments and flags, every setting with its flag,
 * environment variable, config key, default and the commands that read it, and the exit codes. Generated from
 * the command definitions, so help, docs and behaviour cannot drift apart.
 */
export function renderCliReference(programs: readonly ProgramDef[]): string {
  return `${[
    '# Command-line reference',
    '',
    '<!-- Generated from the command definitions in src/cli/ by `npm run docs:cli`: edit those, not this file. -->',
    '',
    `${programs.map((p) => `${code(p.name)} (${p.summary})`).join(' and ')}: every command, flag and setting, and the exit codes. Every command also prints its own help with \`--help\`.`,
    '',
    CONVENTIONS,
    '',
    ...programs.flatMap((p) => [renderProgram(p), '']),
  ]
    .join('\n')
    .trimEnd()}\n`;
}
