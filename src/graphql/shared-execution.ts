// Subscription fan-out without per-subscriber work: graphql-ws would execute the selection set once per
// subscriber per event. Our subscription results depend only on the event and the operation (each
// subscriber was authorised for the event before it reaches this point), so the result of executing one
// operation on one event is computed once and shared by every subscriber with the same operation text and
// variables. For the WebSocket fast path the result's JSON text is shared too (see directNext).
//
// The key holds the variables as the schema coerced them, never the client's raw JSON: raw variables may be
// anything (30,000 nested arrays made JSON.stringify overflow the stack and close the socket with 4500), and
// two spellings of the same values share a result. Raw variables are bounded on both transports first
// (variablesProblem), with the same error.
import {
  GraphQLError,
  createSourceEventStream,
  execute,
  getOperationAST,
  getVariableValues,
  print,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';

const printed = new WeakMap<DocumentNode, string>();
/** Per event object: operation key → its (promised) result. Entries die with the event. */
const results = new WeakMap<object, Map<string, Promise<ExecutionResult> | ExecutionResult>>();
/** The JSON of an error-free result as UTF-8, made once for every subscriber that shares it. */
const serialised = new WeakMap<ExecutionResult, Buffer>();
const CLOSE = Buffer.from('}');

/** At most this deep (a value inside an object or list inside … counts one level each). */
export const MAX_VARIABLES_DEPTH = 16;
/** At most this many values in all (every object, list, key and leaf counts one). */
export const MAX_VARIABLES_VALUES = 2_000;

/**
 * Why a request's raw `variables` are refused, or undefined when they are within the bounds. Walked without
 * recursion: the input is the client's.
 */
export function variablesProblem(variables: unknown): string | undefined {
  const pending: [unknown, number][] = [[variables, 0]];
  let values = 0;
  while (pending.length) {
    const [value, depth] = pending.pop()!;
    if (++values > MAX_VARIABLES_VALUES) return `variables hold more than ${MAX_VARIABLES_VALUES} values`;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_VARIABLES_DEPTH) return `variables are nested more than ${MAX_VARIABLES_DEPTH} levels deep`;
    const children = Array.isArray(value) ? value : Object.values(value);
    // Each key counts too (an object with many keys of empty values is no smaller).
    if (!Array.isArray(value)) values += children.length;
    for (const child of children) pending.push([child, depth + 1]);
  }
  return undefined;
}

/**
 * The key results are shared under, or undefined when the variables do not coerce (execution reports that
 * itself, and nothing is shared).
 */
function operationKey(args: ExecutionArgs): string | undefined {
  let text = printed.get(args.document);
  if (text === undefined) {
    text = print(args.document);
    printed.set(args.document, text);
  }
  const operation = getOperationAST(args.document, args.operationName);
  if (!operation) return undefined;
  const variables = getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {}, { maxErrors: 1 });
  if (variables.errors) return undefined;
  return `${args.operationName ?? ''}\u0000${JSON.stringify(variables.coerced)}\u0000${text}`;
}

const isPromise = (v: unknown): v is Promise<unknown> => typeof (v as { then?: unknown } | null)?.then === 'function';

function resultFor(args: ExecutionArgs, key: string, event: object): Promise<ExecutionResult> | ExecutionResult {
  let perEvent = results.get(event);
  if (!perEvent) results.set(event, (perEvent = new Map()));
  let result = perEvent.get(key);
  if (!result) {
    result = execute({ ...args, rootValue: event });
    perEvent.set(key, result);
  }
  return result;
}

/**
 * For one subscription: a function that gives, synchronously, the complete graphql-transport-ws `next`
 * message for an event as UTF-8 parts to send in order (this subscription's head, the shared result, the
 * close), or undefined when it cannot (the execution is asynchronous, or its result has errors, which the
 * server must mask): the caller then leaves the event to the ordinary path, which reuses the same execution.
 */
export function directNext(args: ExecutionArgs, id: string): (event: object) => readonly Buffer[] | undefined {
  const key = operationKey(args);
  if (key === undefined) return () => undefined;
  const head = Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`);
  return (event) => {
    const result = resultFor(args, key, event);
    if (isPromise(result) || result.errors) return undefined;
    let json = serialised.get(result);
    if (json === undefined) {
      json = Buffer.from(JSON.stringify(result));
      serialised.set(result, json);
    }
    return [head, json, CLOSE];
  };
}

export async function sharedSubscribe(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in Object(stream))) return stream as ExecutionResult;
  const source = stream as AsyncIterableIterator<unknown>;
  const key = operationKey(args);
  let ended = false;
  const mapped: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      if (ended) return { value: undefined, done: true };
      let item: IteratorResult<unknown>;
      try {
        item = await source.next();
      } catch (err) {
        // A stream that ends in error (authorisation revoked, subscriber too slow) ends this subscription
        // with that error as its last result, instead of tearing down the whole WebSocket.
        ended = true;
        const error = err instanceof GraphQLError ? err : new GraphQLError('internal error', { originalError: err as Error });
        return { value: { errors: [error] }, done: false };
      }
      if (item.done) return { value: undefined, done: true };
      const event = item.value;
      if (typeof event !== 'object' || event === null || key === undefined)
        return { value: await execute({ ...args, rootValue: event }), done: false };
      return { value: await resultFor(args, key, event), done: false };
    },
    async return() {
      await source.return?.();
      return { value: undefined, done: true };
    },
    async throw(err?: unknown) {
      await source.return?.();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return mapped;
    },
  };
  return mapped;
}
