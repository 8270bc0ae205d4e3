import { buildSchema, parse, type ExecutionArgs } from 'graphql';
import { describe, expect, it } from 'vitest';
import { MAX_VARIABLES_DEPTH, MAX_VARIABLES_VALUES, directNext, variablesProblem } from './shared-execution.ts';

const text = (parts: readonly Buffer[] | undefined) => Buffer.concat(parts!).toString();

const schema = buildSchema(`
  type Query { ok: Boolean }
  type Event { name: String, later: String, broken: String }
  type Subscription { events(tag: String): Event }
`);
const args = (query: string, contextValue: object = {}): ExecutionArgs => ({
  schema,
  document: parse(query),
  contextValue,
  fieldResolver: (source, _args, _ctx, info) => {
    const value = (source as Record<string, unknown>)[info.fieldName];
    return typeof value === 'function' ? value() : value;
  },
});

describe('directNext', () => {
  it('gives the graphql-transport-ws next message with the executed result', () => {
    const next = directNext(args('subscription { events { name } }'), 'sub "1"');
    const message = next({ events: { name: 'one' } });
    expect(JSON.parse(text(message))).toEqual({ id: 'sub "1"', type: 'next', payload: { data: { events: { name: 'one' } } } });
  });

  it('executes once per event for every subscriber with the same operation, each with its own id', () => {
    let runs = 0;
    const event = { events: { name: () => (runs++, 'one') } };
    const a = directNext(args('subscription { events { name } }'), 'a');
    const b = directNext(args('subscription { events { name } }'), 'b');
    const other = directNext(args('subscription { events { name name2: name } }'), 'c');
    expect(JSON.parse(text(a(event))).id).toBe('a');
    expect(JSON.parse(text(b(event))).id).toBe('b');
    expect(runs).toBe(1);
    expect(JSON.parse(text(other(event))).payload).toEqual({ data: { events: { name: 'one', name2: 'one' } } });
    expect(runs).toBe(3);
    a({ events: { name: () => (runs++, 'two') } });
    expect(runs).toBe(4);
  });

  it('declines a result that is not ready at once or that has errors (the ordinary path masks those)', () => {
    const later = directNext(args('subscription { events { later } }'), 'a');
    expect(later({ events: { later: async () => 'soon' } })).toBeUndefined();
    const broken = directNext(args('subscription { events { broken } }'), 'a');
    expect(
      broken({
        events: {
          broken: () => {
            throw new Error('secret detail');
          },
        },
      }),
    ).toBeUndefined();
  });
});

/** [[[…]]] n levels deep, built without recursion. */
function nested(n: number): unknown {
  let value: unknown = [];
  for (let i = 0; i < n; i++) value = [value];
  return value;
}

describe('variables from a client', () => {
  it('are keyed as the schema coerces them: 30,000 nested arrays neither overflow the stack nor get shared apart', () => {
    let runs = 0;
    const event = { events: { name: () => (runs++, 'one') } };
    const query = 'subscription($tag: String) { events(tag: $tag) { name } }';
    const plain = directNext({ ...args(query), variableValues: { tag: 'x' } }, 'a');
    const hostile = directNext({ ...args(query), variableValues: { tag: 'x', unused: nested(30_000) } }, 'b');
    expect(JSON.parse(text(plain(event))).payload).toEqual({ data: { events: { name: 'one' } } });
    expect(JSON.parse(text(hostile(event))).id).toBe('b');
    expect(runs).toBe(1);
  });

  it('that do not coerce are left to execution, which reports them', () => {
    const next = directNext({ ...args('subscription($tag: String) { events(tag: $tag) { name } }'), variableValues: { tag: nested(30_000) } }, 'a');
    expect(next({ events: { name: 'one' } })).toBeUndefined();
  });

  it.each([
    ['30,000 nested arrays', { deep: nested(30_000) }, /nested more than/],
    ['nesting one level too deep', { deep: nested(MAX_VARIABLES_DEPTH) }, /nested more than/],
    ['too many values', { many: Array.from({ length: MAX_VARIABLES_VALUES }, (_, i) => i) }, /more than/],
    ['too many keys', Object.fromEntries(Array.from({ length: MAX_VARIABLES_VALUES }, (_, i) => [`k${i}`, null])), /more than/],
  ])('are refused with %s', (_case, variables, message) => {
    expect(variablesProblem(variables)).toMatch(message);
  });

  it.each([
    [undefined],
    [null],
    [{}],
    [{ input: { template: 'ubuntu', resources: { gpu: 1, memory: '4Gi' } } }],
    [{ deep: nested(MAX_VARIABLES_DEPTH - 2) }],
  ])('are accepted when ordinary: %j', (variables) => {
    expect(variablesProblem(variables)).toBeUndefined();
  });
});
