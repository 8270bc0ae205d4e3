import { templateView } from '../src/sessions/session-view.ts';
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
    // The reconciler's own defaults and limits (operator/resolve.ts sessionLimits), not the raw fields.
    resources: (t, _a, { services }) => templateView(t, services.reconcilerConfig).resources,
    applications: (t) => (t.spec.applications ?? []).map((a) => ({ name: a.name, icon: a.icon ?? null })),
    defaultTimeout: (t, _a, { services }) => templateView(t, services.reconcilerConfig).defaultTimeout,
    maxTimeout: (t, _a, { services }) => templateView(t, services.reconcilerConfig).maxTimeout,
    persistence: (t, _a, { services }) => templateView(t, services.reconcilerConfig).persistence,
  },
};
