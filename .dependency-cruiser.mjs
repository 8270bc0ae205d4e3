// The layers of docs/adr/0008-layers.md, enforced by `npm run lint`: each rule below forbids one arrow that
// would point up (or sideways into a layer that is not below), plus import cycles and product code importing
// tests. Test files (*.test.ts beside code, test/, bench/) may import anything.

/** Value formats (durations, quantities): pure functions that the service and the dashboard share; below everything. */
const FORMATS = '^formats/';
/** The Kubernetes ground layer: client, informers and caches, work queue, leader election, Event recorder, API types, the table of kinds. */
const GROUND = '^(src/kube/|operator/(informer|caches|work-queue|leader-election|events|v1alpha1|kinds)\\.ts$)';
const TESTS = '(^test/|^bench/|\\.test\\.tsx?$)';
/**
 * The API's domain: session services, the subscription hub, browser login and the desktop access path, and what
 * they share with the resolvers. The GraphQL server (src/graphql/) is wiring above them.
 */
const DOMAIN = '^(src/(sessions|subscriptions|login|desktop-access)/|src/(routing|errors|rate-limit)\\.ts$)';
/** The one configuration module and the logger: what the local default may take from src/. */
const CONFIG = '^src/(config|log)\\.ts$';
const OURS = '^(schema|resolvers|auth|operator|formats|src|dev|dashboard|bench|test)/';

const only = (name, comment, from, allowed) => ({
  name,
  comment,
  severity: 'error',
  from: { path: from, pathNot: TESTS },
  to: { path: OURS, pathNot: allowed },
});

export default {
  forbidden: [
    { name: 'no-circular', comment: 'No import cycle, type imports included.', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'no-test-in-product',
      comment: 'No product file imports test or benchmark code.',
      severity: 'error',
      from: { pathNot: TESTS },
      to: { path: TESTS },
    },
    only('formats-import-nothing', 'The value formats stand on nothing of ours.', FORMATS, FORMATS),
    only('ground-on-formats', 'The ground layer stands on the value formats only.', GROUND, `(${GROUND}|${FORMATS})`),
    only('auth-on-ground', 'auth/ may import the ground layer only.', '^auth/', `(^auth/|${GROUND}|${FORMATS})`),
    only(
      'operator-on-ground',
      'operator/ may import the ground layer only: never resolvers/, src/ or auth/.',
      '^operator/',
      `(^operator/|${GROUND}|${FORMATS})`,
    ),
    only(
      'resolvers-on-domain',
      'resolvers/ are thin adapters: auth/, the domain services of src/ and the API types.',
      '^resolvers/',
      `(^resolvers/|^auth/|${DOMAIN}|${GROUND}|${FORMATS})`,
    ),
    only(
      'domain-below-graphql',
      'The domain services do not know the GraphQL layer or the wiring above them.',
      DOMAIN,
      `(${DOMAIN}|^auth/|^operator/|${GROUND}|${FORMATS}|${CONFIG}|^src/metrics\\.ts$)`,
    ),
    only(
      'dev-on-ground',
      'The local default (dev/) stands on the ground layer and the configuration.',
      '^dev/',
      `(^dev/|${GROUND}|${FORMATS}|${CONFIG})`,
    ),
    only(
      'dashboard-alone',
      'The dashboard speaks to the service through GraphQL only: no server code, but the value formats it shares.',
      '^dashboard/',
      `(^dashboard/|${FORMATS})`,
    ),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^node_modules/|^dashboard/dist/|^dist/)' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.js'] },
  },
};
