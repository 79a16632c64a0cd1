import { defineConfig } from 'tsup';

/** Public entry points: one per package.json `exports` subpath. */
const entries = {
  index: 'src/index.ts',
  'manifest/index': 'src/manifest/index.ts',
  'shell/index': 'src/shell/index.ts',
  'systemd/index': 'src/systemd/index.ts',
  'caddy/index': 'src/caddy/index.ts',
  'nix/index': 'src/nix/index.ts',
  's3/index': 'src/s3/index.ts',
  'deployer/index': 'src/deployer/index.ts',
  'policy/index': 'src/policy/index.ts',
  'push/index': 'src/push/index.ts',
  'testing/index': 'src/testing/index.ts',
};

export default defineConfig({
  entry: { ...entries, 'bin/deployer': 'bin/deployer.ts', 'bin/push': 'bin/push.ts' },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  dts: { entry: entries },
  clean: true,
  splitting: true,
  sourcemap: false,
});
