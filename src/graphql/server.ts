// The GraphQL API: Apollo Server 5 on Express 5 for HTTP and graphql-ws on the same http.Server and path for
// subscriptions. Apollo's plugins and validation rules do not run on the WebSocket path, so the same limits
// (armor rules, token limit, introspection, error masking) are applied there explicitly.
import { readFileSync, readdirSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { makeExecutableSchema } from '@graphql-tools/schema';
import DataLoader from 'dataloader';
import express from 'express';
import {
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ValidationContext,
} from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { AuthenticationError, type TokenVerifier } from '../../auth/token-verifier.ts';
import type { Identity } from '../../auth/identity.ts';
import type { Context } from '../../resolvers/context.ts';
import type { VDITemplate } from '../../operator/v1alpha1.ts';
import { resolvers } from '../../resolvers/index.ts';
import type { Config } from '../config.ts';
import { ApiError, badInput, rateLimited, unauthenticated } from '../errors.ts';
import type { Logger } from '../log.ts';
import { operationLabel, type Metrics } from '../metrics.ts';
import { RateLimiter } from '../rate-limit.ts';
import { directNext, sharedSubscribe, variablesProblem } from './shared-execution.ts';
import { sendText } from './ws-frame.ts';
import type { ApiServices } from '../sessions/services.ts';
import type { BrowserSessions } from '../login/browser-session.ts';

const schemaDir = path.resolve(import.meta.dirname, '../../schema');

export function loadSchema(): GraphQLSchema {
  const typeDefs = readdirSync(schemaDir)
    .filter((f) => f.endsWith('.graphql'))
    .sort()
    .map((f) => readFileSync(path.join(schemaDir, f), 'utf8'));
  return makeExecutableSchema({ typeDefs, resolvers: resolvers as never });
}

export interface ApiOptions {
  app: express.Express;
  server: http.Server;
  config: Config;
  services: ApiServices;
  verifier: TokenVerifier;
  metrics: Metrics;
  log: Logger;
  /** Accepts the portal's session cookie when a request carries no bearer token. */
  browserSessions?: BrowserSessions;
}

export interface Api {
  /** Closes WebSocket connections and stops Apollo (HTTP draining is done by the drain plugin). */
  stop(): Promise<void>;
}

/** Above this many unsent bytes on a WebSocket, subscription events wait in the subscriber's bounded queue. */
const DIRECT_MAX_BUFFERED = 1024 * 1024;

const CODES_SAFE_TO_SHOW = new Set([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'QUOTA_EXCEEDED',
  'CONFLICT',
  'UNAVAILABLE',
  'RATE_LIMITED',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);

/** Anything that is not one of our typed errors becomes a generic internal error (logged, never shown). */
export function maskError(formatted: GraphQLFormattedError, original: unknown, log: Logger): GraphQLFormattedError {
  const code = formatted.extensions?.code as string | undefined;
  if (code && CODES_SAFE_TO_SHOW.has(code)) {
    const { stacktrace: _s, ...extensions } = (formatted.extensions ?? {}) as Record<string, unknown>;
    return { ...formatted, extensions };
  }
  log.error({ error: original instanceof Error ? original.message : String(original), path: formatted.path }, 'internal error in a resolver');
  return { message: 'internal error', path: formatted.path, locations: formatted.locations, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
}

/**
 * Refuses a request whose variables are nested too deeply or hold too many values with BAD_USER_INPUT, the
 * error a subscription over WebSocket gets for the same variables. GET requests carry them as JSON text.
 */
function refuseHostileVariables(req: express.Request, res: express.Response, next: express.NextFunction): void {
  let variables = (req.body as { variables?: unknown } | undefined)?.variables;
  if (variables === undefined && typeof req.query.variables === 'string') {
    try {
      variables = JSON.parse(req.query.variables);
    } catch {
      // Apollo answers malformed JSON itself.
    }
  }
  const problem = variablesProblem(variables);
  if (!problem) return next();
  const error = badInput(problem, 'variables');
  res.status(400).json({ errors: [{ message: error.message, extensions: error.extensions }] });
}

function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return m?.[1];
}

export async function startApi(opts: ApiOptions): Promise<Api> {
  const { app, server, config, services, verifier, metrics, log, browserSessions } = opts;
  // A cookie-carrying request's Origin (absent for non-browser clients) must be the portal's own. Not the
  // desktops' hosts: they are same-site with the portal, so the cookie rides along, and serve pages their users control.
  const portalOrigin = new URL(config.access.publicUrl).origin;
  const originAllowed = (origin: string | undefined) => origin === undefined || origin === portalOrigin;
  const schema = loadSchema();
  const limiter = new RateLimiter(config.api.rateLimitPerMinute);
  // Rejections are reported as validation errors rather than thrown: a throw would close a whole WebSocket.
  const report = { propagateOnRejection: false, onReject: [(ctx: ValidationContext | null, err: GraphQLError) => ctx?.reportError(err)] };
  const armor = new ApolloArmor({
    maxDepth: { n: config.api.maxDepth, ...report },
    costLimit: { maxCost: config.api.maxCost, ...report },
    maxAliases: { n: config.api.maxAliases, ...report },
    maxDirectives: { n: 20, ...report },
    maxTokens: { n: config.api.maxTokens, ...report },
    blockFieldSuggestion: { enabled: config.production },
  });
  const protection = armor.protect();
  // graphql-armor is typed against Apollo's CommonJS build; the plugins are the same objects.
  const armorPlugins = protection.plugins as unknown as ApolloServerPlugin<Context>[];
  const extraRules = config.production ? [NoSchemaIntrospectionCustomRule] : [];

  const authenticate = async (token: string | undefined): Promise<Identity> => {
    if (!token) throw unauthenticated();
    try {
      return await verifier.verify(token);
    } catch (err) {
      if (err instanceof AuthenticationError) {
        log.info({ reason: err.reason }, 'refused a token');
        throw unauthenticated('invalid or expired token');
      }
      throw err;
    }
  };
  const contextFor = (identity: Identity): Context => {
    if (!limiter.take(identity.username)) throw rateLimited();
    return {
      identity,
      services,
      loaders: {
        // Made on first use: most subscriptions never resolve a template, and each loader costs memory.
        get template() {
          const loader = new DataLoader<string, VDITemplate | undefined>(async (names) => names.map((n) => services.caches.templates.get(n)));
          Object.defineProperty(this, 'template', { value: loader });
          return loader;
        },
      },
    };
  };

  // ---- WebSocket (graphql-ws) ----
  const checkedOperations = new Map<string, { document: DocumentNode } | { errors: GraphQLError[] }>();
  const checkOperation = (query: string): { document: DocumentNode } | { errors: GraphQLError[] } => {
    const hit = checkedOperations.get(query);
    if (hit) return hit;
    let result: { document: DocumentNode } | { errors: GraphQLError[] };
    try {
      const document = parse(query, { maxTokens: config.api.maxTokens, noLocation: true });
      const errors = validate(schema, document, [...specifiedRules, ...protection.validationRules, ...extraRules]);
      result = errors.length
        ? { errors: errors.map((e) => new GraphQLError(e.message, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })) }
        : { document };
    } catch (err) {
      const message = err instanceof GraphQLError ? err.message : 'syntax error';
      result = { errors: [new GraphQLError(message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })] };
    }
    if (checkedOperations.size >= 1000) checkedOperations.delete(checkedOperations.keys().next().value!);
    checkedOperations.set(query, result);
    return result;
  };
  const wss = new WebSocketServer({ server, path: '/graphql', maxPayload: 64 * 1024 });
  const connectionsPerUser = new Map<string, number>();
  type Extra = Record<PropertyKey, unknown> & {
    identity?: Identity;
    subscriptions?: number;
    expiryTimer?: NodeJS.Timeout;
  };
  const wsCleanup = useServer<Record<string, unknown> | undefined, Extra>(
    {
      schema,
      subscribe: sharedSubscribe,
      connectionInitWaitTimeout: 10_000,
      onConnect: async (ctx) => {
        const payload = ctx.connectionParams ?? {};
        const raw = (payload.authorization ?? payload.Authorization) as string | undefined;
        const token = bearer(raw) ?? (typeof payload.token === 'string' ? payload.token : undefined);
        let identity: Identity;
        // When the connection must close (seconds since the epoch): the token's expiry, or the browser
        // session's end if that comes first.
        let closeAt: number | undefined;
        try {
          const request = ctx.extra.request;
          // Browsers send cookies on cross-site WebSocket upgrades (no CORS there): a cookie only counts from the portal's Origin.
          if (!token && browserSessions?.cookieValue(request.headers.cookie)) {
            if (!originAllowed(request.headers.origin)) throw unauthenticated();
            const found = await browserSessions.authenticate(request.headers.cookie);
            if (!found) throw unauthenticated();
            identity = found.identity;
            closeAt = Math.min(identity.expiresAt ?? Infinity, found.sessionEndsAt);
          } else {
            identity = await authenticate(token);
            closeAt = identity.expiresAt;
          }
        } catch {
          ctx.extra.socket.close(4401, 'Unauthorized');
          return false;
        }
        const open = connectionsPerUser.get(identity.username) ?? 0;
        if (open >= config.api.maxConnectionsPerUser) {
          ctx.extra.socket.close(4429, 'Too many connections');
          return false;
        }
        connectionsPerUser.set(identity.username, open + 1);
        const extra = ctx.extra as Extra;
        // Nothing later needs the upgrade request or the token it came with: a connection that lives for hours
        // should not hold them (about 2 KB each, at 10,000 subscribers 20 MB).
        delete extra.request;
        (ctx as { connectionParams?: unknown }).connectionParams = undefined;
        extra.identity = identity;
        extra.subscriptions = 0;
        if (closeAt) {
          // The connection lives no longer than the token (or browser session) that opened it.
          const ms = closeAt * 1000 - Date.now();
          extra.expiryTimer = setTimeout(() => ctx.extra.socket.close(4401, 'Token expired'), Math.max(0, Math.min(ms, 2 ** 31 - 1)));
        }
        metrics.wsConnections.inc();
        return true;
      },
      onClose: (ctx) => {
        const extra = ctx.extra as Extra;
        if (!extra.identity) return;
        clearTimeout(extra.expiryTimer);
        const open = (connectionsPerUser.get(extra.identity.username) ?? 1) - 1;
        if (open <= 0) connectionsPerUser.delete(extra.identity.username);
        else connectionsPerUser.set(extra.identity.username, open);
        metrics.wsConnections.dec();
        metrics.subscriptions.dec(extra.subscriptions ?? 0);
        extra.subscriptions = 0;
      },
      onSubscribe: (ctx, id, payload) => {
        const extra = ctx.extra as Extra;
        if (!extra.identity) return [new ApiError('UNAUTHENTICATED', 'authentication required')];
        if ((extra.subscriptions ?? 0) >= config.api.maxSubscriptionsPerConnection) {
          return [new ApiError('RATE_LIMITED', `at most ${config.api.maxSubscriptionsPerConnection} subscriptions per connection`)];
        }
        // Bounded before anything walks them, with the answer HTTP gives (see refuseHostileVariables).
        const problem = variablesProblem(payload.variables);
        if (problem) return [badInput(problem, 'variables')];
        // Thousands of subscribers send the same few operations: parse and validate each text once.
        const checked = checkOperation(payload.query);
        if ('errors' in checked) return checked.errors;
        const { document } = checked;
        let contextValue: Context;
        try {
          contextValue = contextFor(extra.identity);
        } catch (err) {
          return [err as GraphQLError];
        }
        extra.subscriptions = (extra.subscriptions ?? 0) + 1;
        metrics.subscriptions.inc();
        const args: ExecutionArgs = {
          schema,
          document,
          variableValues: payload.variables,
          operationName: payload.operationName,
          contextValue,
        };
        // The fan-out fast path: the event's shared result, serialised once, written straight to this socket.
        const socket = ctx.extra.socket;
        const next = directNext(args, id);
        contextValue.direct = (event) => {
          // A socket the client does not drain keeps its events queued, where a subscriber too far behind ends.
          if (socket.readyState !== socket.OPEN || socket.bufferedAmount > DIRECT_MAX_BUFFERED) return false;
          // A throw here counts as declining (the hub catches it): the ordinary path then delivers the event or
          // ends the subscription with the error.
          const message = next(event);
          if (message === undefined) return false;
          sendText(socket, message);
          return true;
        };
        return args;
      },
      onComplete: (ctx) => {
        const extra = ctx.extra as Extra;
        if (extra.subscriptions) {
          extra.subscriptions--;
          metrics.subscriptions.dec();
        }
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => maskError(e.toJSON(), e.originalError ?? e, log)) as never,
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!('errors' in result) || !result.errors) return result;
        return { ...result, errors: result.errors.map((e) => maskError(e.toJSON(), e.originalError ?? e, log)) } as never;
      },
    },
    wss,
  );

  // ---- HTTP (Apollo) ----
  const rootFields = new Set(
    [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]
      .flatMap((t) => (t ? Object.keys(t.getFields()) : []))
      .concat('__typename', '__schema', '__type'),
  );
  const metricsPlugin: ApolloServerPlugin<Context> = {
    async requestDidStart() {
      const started = performance.now();
      return {
        async willSendResponse(rc) {
          const outcome = rc.errors?.length ? String(rc.errors[0]?.extensions?.code ?? 'error') : 'ok';
          metrics.operations.observe(
            { operation: operationLabel(rc.operation, rootFields), type: rc.operation?.operation ?? 'unknown', outcome },
            (performance.now() - started) / 1000,
          );
        },
      };
    },
  };
  const apollo = new ApolloServer<Context>({
    schema,
    introspection: !config.production,
    csrfPrevention: true,
    // main.ts handles SIGTERM/SIGINT and stops everything in order; Apollo's own handler would race it.
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    allowBatchedHttpRequests: false,
    plugins: [
      ...armorPlugins,
      metricsPlugin,
      ApolloServerPluginDrainHttpServer({ httpServer: server }),
      // No HTTP caching of per-user data; without it Apollo wraps no resolver (a third of the CPU of a
      // 1,000-session query went to its per-field hooks).
      ApolloServerPluginCacheControlDisabled(),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await wsCleanup.dispose();
            },
          };
        },
      },
    ],
    validationRules: [...protection.validationRules, ...extraRules],
    formatError: (formatted, original) => maskError(formatted, original, log),
  });
  await apollo.start();
  app.use(
    '/graphql',
    express.json({ limit: config.api.bodyLimit }),
    refuseHostileVariables,
    expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        const token = bearer(req.headers.authorization);
        if (token || !browserSessions?.cookieValue(req.headers.cookie)) return contextFor(await authenticate(token));
        // The session cookie. Apollo's csrfPrevention already refuses "simple" requests (form posts, plain
        // GETs), which a foreign page could send with the cookie attached; any other Origin is refused too.
        if (!originAllowed(req.headers.origin)) throw unauthenticated('the session cookie is not accepted from this origin');
        const found = await browserSessions.authenticate(req.headers.cookie);
        if (!found) throw unauthenticated('your session has expired: sign in again');
        if (found.setCookie) res.append('Set-Cookie', found.setCookie);
        return contextFor(found.identity);
      },
    }),
  );

  return {
    async stop() {
      await apollo.stop();
    },
  };
}
