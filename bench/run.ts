/**
 * `npm run bench`: runs every benchmark script in bench/ (each `<module>.ts` prints its own figures next to a
 * baseline measured in the same run), one after the other so they do not compete for the CPU.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const only = process.argv.slice(2);
const scripts = readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && f !== 'lib.ts')
  .filter((f) => only.length === 0 || only.some((name) => f.startsWith(name)))
  .sort();
let failed = 0;
for (const script of scripts) {
  console.log(`\n=== bench/${script} ===`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', `bench/${script}`], {
    stdio: 'inherit',
    // The AWS SDK's "needs Node 22 from 2027" notice is not a figure.
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
