import { parse, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { operationLabel } from './metrics.ts';

const roots = new Set(['me', 'sessions', 'createVDISession', '__typename']);
const op = (text: string) => parse(text).definitions[0] as OperationDefinitionNode;

describe('operationLabel', () => {
  it('labels an operation by its first root field, whatever name or aliases the client chose', () => {
    expect(operationLabel(op('query WhateverINamedIt { me { username } }'), roots)).toBe('me');
    expect(operationLabel(op('mutation X1 { a: createVDISession(input: {template: "t"}) { name } me { username } }'), roots)).toBe('createVDISession');
    expect(operationLabel(op('{ sessions { name } }'), roots)).toBe('sessions');
  });

  it('keeps the label set bounded: unknown fields, bare fragments and failed documents get fixed labels', () => {
    expect(operationLabel(op(`query { ${'x'.repeat(40)} }`), roots)).toBe('invalid');
    expect(operationLabel(op('query { ...F }'), roots)).toBe('fragment');
    expect(operationLabel(undefined, roots)).toBe('invalid');
  });
});
