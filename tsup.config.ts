import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'manifest/index': 'src/manifest/index.ts',
    'bin/deployer': 'bin/deployer.ts',
    'bin/push': 'bin/push.ts',
  },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  dts: { entry: { index: 'src/index.ts', 'manifest/index': 'src/manifest/index.ts' } },
  clean: true,
  splitting: true,
  sourcemap: false,
});
