import type { Resolvers } from './__generated__/types.ts';

export const userResolvers: Resolvers = {
  Query: {
    me: async (_p, _a, { services, identity }) => {
      const namespace = services.namespaces.namespaceOf(identity.name);
      return {
        username: identity.username,
        name: identity.name,
        groups: identity.groups,
        isAdmin: identity.isAdmin,
        namespace,
        quota: await services.quota(namespace),
      };
    },
    capacity: (_p, _a, { services }) => services.capacity(),
  },
};
