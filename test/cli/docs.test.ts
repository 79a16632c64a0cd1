import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEPLOYER } from '../../src/cli/deployer.js';
import { CLI_DOCS_FILE, renderCliReference } from '../../src/cli/docs.js';
import { PUSH } from '../../src/cli/push.js';

describe(CLI_DOCS_FILE, () => {
  it('is what the command definitions generate (run `npm run docs:cli` after changing them)', () => {
    const committed = readFileSync(new URL(`../../${CLI_DOCS_FILE}`, import.meta.url), 'utf8');
    const generated = renderCliReference([DEPLOYER, PUSH]);
    if (committed !== generated) {
      const [a, b] = [committed.split('\n'), generated.split('\n')];
      const differs = a.findIndex((l, i) => l !== b[i]);
      const line = differs < 0 ? a.length : differs;
      expect.fail(
        `${CLI_DOCS_FILE} is stale: run \`npm run docs:cli\` and commit the result (first difference at line ${line + 1}: ${JSON.stringify(a[line])}, generated ${JSON.stringify(b[line])})`,
      );
    }
  });

  it('names every command, every flag and every setting with its environment variable and config key', () => {
    const text = renderCliReference([DEPLOYER, PUSH]);
    for (const program of [DEPLOYER, PUSH]) {
      for (const command of program.commands) {
        expect(text).toContain(`### ${program.name} ${command.name}\n`);
        for (const flag of Object.keys(command.flags ?? {})) expect(text).toContain(`--${flag}`);
      }
      for (const s of program.settings) {
        expect(text).toMatch(new RegExp(`\\| \`--${s.flag}[^|]*\\| \`${s.env}\` +\\| \`${s.key}\` +\\|`));
      }
      for (const exit of program.exitCodes) expect(text).toContain(`| ${exit.code}    | ${exit.meaning}`);
    }
  });
});
