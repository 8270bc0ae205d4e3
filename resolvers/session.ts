// Thin adapters: arguments → ApiServices → the raw VDISession, projected by the field resolvers below.
import type { Resolvers } from './__generated__/types.ts';

const DEFAULT_PHASE = 'Pending' as const;

export const sessionResolvers: Resolvers = {
  Query: {
    sessions: (_p, args, { services, identity }) => services.sessions(identity, args),
    vdiSessions: (_p, args, { services, identity }) => services.sessions(identity, args),
    session: (_p, { name, user }, { services, identity }) => services.session(identity, name, user),
  },
  Mutation: {
    createVDISession: (_p, { input }, { services, identity }) => services.createSession(identity, input),
    terminateVDISession: (_p, { name, user }, { services, identity }) => services.terminateSession(identity, name, user),
    extendVDISession: (_p, { name, user, by }, { services, identity }) => services.extendSession(identity, name, user, by),
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
    spec: (s) => ({
      user: s.spec.user,
      template: s.spec.template,
      resources: { gpu: s.spec.resources?.gpu ?? null, memory: s.spec.resources?.memory ?? null, cpu: s.spec.resources?.cpu ?? null },
      persistence: s.spec.persistence ? { enabled: s.spec.persistence.enabled ?? false, size: s.spec.persistence.size ?? null } : null,
      timeout: s.spec.timeout ?? null,
    }),
    status: (s) => ({
      phase: s.status?.phase ?? DEFAULT_PHASE,
      reason: s.status?.reason ?? null,
      message: s.status?.message ?? null,
      podName: s.status?.podName ?? null,
      nodeName: s.status?.nodeName ?? null,
      url: s.status?.url ?? null,
      startTime: s.status?.startTime ?? null,
      expiresAt: s.status?.expiresAt ?? null,
      conditions: s.status?.conditions ?? [],
    }),
    template: async (s, _args, { loaders }) => (await loaders.template.load(s.spec.template)) ?? null,
  },
};
