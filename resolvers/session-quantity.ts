// The Quantity scalar: a Kubernetes quantity given as a string (`8Gi`) or a whole number (`2`), as Kubernetes
// itself accepts both; resolvers and the services always see a string. Whether it is a valid quantity within
// the template's limits is the services' judgement (a typed BAD_USER_INPUT), not the parser's.
import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';

function fromValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  throw new GraphQLError(`a quantity is a string such as "8Gi" or a whole number, not ${JSON.stringify(value)}`);
}

export const QuantityScalar = new GraphQLScalarType<string, string>({
  name: 'Quantity',
  serialize: fromValue,
  parseValue: fromValue,
  parseLiteral(ast) {
    if (ast.kind === Kind.STRING) return ast.value;
    if (ast.kind === Kind.INT) return fromValue(Number(ast.value));
    throw new GraphQLError('a quantity is a string such as "8Gi" or a whole number', { nodes: ast });
  },
});
