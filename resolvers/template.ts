import type { Resolvers } from './__generated__/types.ts';

export const templateResolvers: Resolvers = {
  Query: {
    templates: (_p, _a, { services, identity }) => services.templates(identity),
    template: (_p, { name }, { services, identity }) => services.template(identity, name),
  },
  VDITemplate: {
    name: (t) => t.metadata.name!,
    displayName: (t) => t.spec.displayName,
    description: (t) => t.spec.description ?? null,
    image: (t) => t.spec.image,
    encoder: (t) => t.spec.encoder ?? null,
    resources: (t) => {
      const r = t.spec.resources ?? {};
      return {
        defaultGPU: r.defaultGPU ?? 1,
        maxGPU: r.maxGPU ?? r.defaultGPU ?? 1,
        defaultMemory: r.defaultMemory ?? '8Gi',
        maxMemory: r.maxMemory ?? null,
        defaultCPU: r.defaultCPU ?? '4',
        maxCPU: r.maxCPU ?? null,
      };
    },
    applications: (t) => (t.spec.applications ?? []).map((a) => ({ name: a.name, icon: a.icon ?? null })),
    defaultTimeout: (t) => t.spec.defaultTimeout ?? null,
    maxTimeout: (t) => t.spec.maxTimeout ?? null,
    persistence: (t) =>
      t.spec.persistence
        ? { defaultEnabled: t.spec.persistence.defaultEnabled ?? false, defaultSize: t.spec.persistence.defaultSize ?? null, maxSize: t.spec.persistence.maxSize ?? null }
        : null,
  },
};
