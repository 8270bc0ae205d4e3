import type { Resolvers } from './__generated__/types.ts';
import { sessionResolvers } from './session.ts';
import { templateResolvers } from './template.ts';
import { userResolvers } from './user.ts';

/** One resolver map per domain; makeExecutableSchema merges them. */
export const resolvers: Resolvers[] = [sessionResolvers, templateResolvers, userResolvers];
