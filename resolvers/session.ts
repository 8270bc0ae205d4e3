// Thin adapters: arguments → ApiServices → the raw VDISession, projected by the field resolvers below.
import { sessionPresenceView, sessionSpecView, sessionUrlView } from '../src/sessions/session-view.ts';
import type { VDISession, VDITemplate } from '../operator/v1alpha1.ts';
import type { Resolvers } from './__generated__/types.ts';
import { QuantityScalar } from './session-quantity.ts';

const DEFAULT_PHASE = 'Pending' as const;

export const sessionResolvers: Resolvers = {
  Quantity: QuantityScalar,
  Query: {
    sessions: (_p, args, { services, identity }) => services.sessions(identity, args),
    vdiSessions: (_p, args, { services, identity }) => services.sessions(identity, args),
    session: (_p, { name, user }, { services, identity }) => services.session(identity, name, user),
    idleReclaim: (_p, _a, { services, identity }) => services.idleReclaim(identity),
  },
  Mutation: {
    createVDISession: (_p, { input }, { services, identity }) => services.createSession(identity, input),
    terminateVDISession: (_p, { name, user }, { services, identity }) => services.terminateSession(identity, name, user),
    extendVDISession: (_p, { name, user, by }, { services, identity }) => services.extendSession(identity, name, user, by),
    resumeVDISession: (_p, { name, user }, { services, identity }) => services.resumeSession(identity, name, user),
  },
  Subscription: {
    sessionEvents: {
      subscribe: async (_p, { user, allUsers }, { services, identity, direct }) => services.subscribeSessions(identity, { user, allUsers }, direct),
      resolve: (event: unknown) => event as never,
    },
    sessionStatus: {
      subscribe: async (_p, { name, user }, { services, identity, direct }) => services.subscribeSessions(identity, { user, name }, direct),
      resolve: (event: unknown) => event as never,
    },
  },
  VDISession: {
    id: (s) => `${s.metadata.namespace}/${s.metadata.name}`,
    name: (s) => s.metadata.name!,
    namespace: (s) => s.metadata.namespace!,
    user: (s) => s.spec.user,
    createdAt: (s) => s.metadata.creationTimestamp ?? new Date(0).toISOString(),
    // Synchronous on purpose (the template comes from the shared cache): a subscription's event whose execution
    // completes synchronously goes straight to the sockets (src/graphql/shared-execution.ts directNext); an
    // async resolver sends every delivery down the slower queued path.
    spec: (s, _args, { services }) => sessionSpecView(s, services.caches.templates.get(s.spec.template), services.reconcilerConfig),
    status: (s, _args, { services }) => new SessionStatusView(s, services.reconcilerConfig, services.caches.templates.get(s.spec.template)),
    template: async (s, _args, { loaders }) => (await loaders.template.load(s.spec.template)) ?? null,
  },
};

type ReconcilerConfig = Parameters<typeof sessionUrlView>[1];

/** A session's status as GraphQL shows it; a class (one shape for V8), with the idle schedule computed only when asked. */
class SessionStatusView {
  readonly phase: NonNullable<NonNullable<VDISession['status']>['phase']>;
  readonly reason: string | null;
  readonly message: string | null;
  readonly podName: string | null;
  readonly nodeName: string | null;
  readonly url: string;
  readonly startTime: string | null;
  readonly firstStartTime: string | null;
  readonly expiresAt: string | null;
  readonly stoppedAt: string | null;
  readonly conditions: NonNullable<NonNullable<VDISession['status']>['conditions']>;
  private readonly session: VDISession;
  private readonly config: ReconcilerConfig;
  private readonly template: VDITemplate | undefined;

  constructor(s: VDISession, config: ReconcilerConfig, template: VDITemplate | undefined) {
    const st = s.status;
    this.phase = st?.phase ?? DEFAULT_PHASE;
    this.reason = st?.reason ?? null;
    this.message = st?.message ?? null;
    this.podName = st?.podName ?? null;
    this.nodeName = st?.nodeName ?? null;
    this.url = sessionUrlView(s, config);
    this.startTime = st?.startTime ?? null;
    this.firstStartTime = st?.firstStartTime ?? st?.startTime ?? null;
    this.expiresAt = st?.expiresAt ?? null;
    this.stoppedAt = st?.stoppedAt ?? null;
    this.conditions = st?.conditions ?? [];
    this.session = s;
    this.config = config;
    this.template = template;
  }

  get presence() {
    return sessionPresenceView(this.session, this.template, this.config, new Date());
  }
}
