// Thin adapters: arguments → ApiServices → the raw VDISession, projected by the field resolvers below.
import { sessionPresenceView, sessionSpecView, sessionUrlView } from '../src/sessions/session-view.ts';
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
    spec: async (s, _args, { loaders, services }) => sessionSpecView(s, await loaders.template.load(s.spec.template), services.reconcilerConfig),
    status: async (s, _args, { services, loaders }) => ({
      phase: s.status?.phase ?? DEFAULT_PHASE,
      reason: s.status?.reason ?? null,
      message: s.status?.message ?? null,
      podName: s.status?.podName ?? null,
      nodeName: s.status?.nodeName ?? null,
      url: sessionUrlView(s, services.reconcilerConfig),
      startTime: s.status?.startTime ?? null,
      firstStartTime: s.status?.firstStartTime ?? s.status?.startTime ?? null,
      expiresAt: s.status?.expiresAt ?? null,
      stoppedAt: s.status?.stoppedAt ?? null,
      presence: sessionPresenceView(s, await loaders.template.load(s.spec.template), services.reconcilerConfig, new Date()),
      conditions: s.status?.conditions ?? [],
    }),
    template: async (s, _args, { loaders }) => (await loaders.template.load(s.spec.template)) ?? null,
  },
};
