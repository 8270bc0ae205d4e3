// What the GraphQL layer's mappers point at (codegen.yml): the domain's own shapes, which resolvers receive and
// project fields from. They live here, beside the domain that produces them, so that the domain never imports
// the GraphQL layer above it.
import type { VDISession } from '../../operator/v1alpha1.ts';

/** A change to a session, as the subscription hub delivers it. */
export interface SessionEventModel {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  session: VDISession;
}
