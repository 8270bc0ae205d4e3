import { parse, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { createMetrics, operationLabel } from './metrics.ts';

const roots = new Set(['me', 'sessions', 'createVDISession', '__typename']);
const op = (text: string) => parse(text).definitions[0] as OperationDefinitionNode;

describe('operationLabel', () => {
  it('labels an operation by its first root field, whatever name or aliases the client chose', () => {
    expect(operationLabel(op('query WhateverINamedIt { me { username } }'), roots)).toBe('me');
    expect(operationLabel(op('mutation X1 { a: createVDISession(input: {template: "t"}) { name } me { username } }'), roots)).toBe(
      'createVDISession',
    );
    expect(operationLabel(op('{ sessions { name } }'), roots)).toBe('sessions');
  });

  it('keeps the label set bounded: unknown fields, bare fragments and failed documents get fixed labels', () => {
    expect(operationLabel(op(`query { ${'x'.repeat(40)} }`), roots)).toBe('invalid');
    expect(operationLabel(op('query { ...F }'), roots)).toBe('fragment');
    expect(operationLabel(undefined, roots)).toBe('invalid');
  });
});

describe('reconciler metrics', () => {
  it('counts reconciles by outcome and dropped Events', async () => {
    const { registry, reconciler } = createMetrics();
    reconciler.reconcile(true, 0.01);
    reconciler.reconcile(false, 0.2);
    reconciler.eventDropped();
    reconciler.eventDropped();
    const text = await registry.metrics();
    expect(text).toMatch(/^vdi_reconcile_duration_seconds_count\{outcome="success"\} 1$/m);
    expect(text).toMatch(/^vdi_reconcile_duration_seconds_count\{outcome="error"\} 1$/m);
    expect(text).toMatch(/^vdi_events_dropped_total 2$/m);
  });
});
