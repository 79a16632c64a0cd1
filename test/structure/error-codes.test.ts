import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeployError, type DeployErrorCode, isDeployError } from '../../src/errors.js';
import { sourceFiles } from './import-graph.js';

const root = new URL('../..', import.meta.url).pathname;

describe('error codes', () => {
  it('are a closed union: an unknown code does not type-check', () => {
    // @ts-expect-error: not a code of any module
    const error = new DeployError('NO_SUCH_CODE', 'x');
    // @ts-expect-error: nor here
    expect(isDeployError(error, 'MANIFEST_INVALIDD')).toBe(false);
    const code: DeployErrorCode = 'MANIFEST_INVALID';
    expect(isDeployError(new DeployError(code, 'x'), 'MANIFEST_INVALID')).toBe(true);
  });

  it('lists only codes that src/ uses (a removed failure takes its code with it)', () => {
    const declared = [
      ...new Set(
        [...readFileSync(join(root, 'src/errors.ts'), 'utf8').matchAll(/'([A-Z][A-Z0-9_]+)'/g)].map(
          (m) => m[1] as string,
        ),
      ),
    ];
    const code = sourceFiles(root, 'src')
      .filter((f) => f !== 'src/errors.ts')
      .map((f) => readFileSync(join(root, f), 'utf8'))
      .join('\n');
    expect(declared.length).toBeGreaterThan(40);
    expect(declared.filter((c) => !code.includes(`'${c}'`))).toEqual([]);
  });
});
