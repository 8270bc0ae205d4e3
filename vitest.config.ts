import { createRequire } from 'node:module';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

// Four projects: fast unit tests beside the code, the dashboard's component tests (happy-dom), integration tests
// that share one real control plane (started once by test/integration/global-setup.ts) and run one file at a
// time on this 2-core machine, and the datastore-sensitive integration tests again on kine.
export default defineConfig({
  // graphql ships CommonJS and ESM builds; Node loads the CommonJS one for every package, so the tests must
  // too, or schemas made by one copy fail instanceof checks in the other ("from another module or realm").
  resolve: { alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }] },
  test: {
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{src,auth,operator,formats,resolvers,dev,test/unit}/**/*.test.ts'],
        },
      },
      {
        plugins: [react()],
        test: {
          name: 'dashboard',
          include: ['dashboard/src/**/*.test.{ts,tsx}'],
          environment: 'happy-dom',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        // The same reconciler, watch/relist, HA and API scenarios on kine over SQLite, K3s's own datastore, whose
        // etcd emulation (polling, its own revisions and compaction) the informers must survive as well. After
        // the etcd run, so the two control planes never share the two cores.
        test: {
          name: 'integration-kine',
          include: ['test/integration/reconciler-*.test.ts', 'test/integration/api.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          env: { VDI_DATASTORE: 'kine' },
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
