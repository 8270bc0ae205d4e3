import { cleanup, render, screen } from '@testing-library/react';
import { CombinedError } from '@urql/core';
import { GraphQLError } from 'graphql';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorMessage } from '../components/error-message.tsx';
import { describeError, isUnauthenticated, messageFor } from './errors.ts';

afterEach(cleanup);

const graphQLError = (code: string, message: string, extra: Record<string, unknown> = {}) =>
  new CombinedError({ graphQLErrors: [new GraphQLError(message, { extensions: { code, ...extra } })] });

describe('messageFor', () => {
  it('explains a full quota and passes on the service’s specific numbers', () => {
    expect(messageFor('QUOTA_EXCEEDED', 'this needs 1 GPU slice(s); the quota allows 2 and 2 are in use')).toEqual({
      code: 'QUOTA_EXCEEDED',
      title: 'Your quota does not allow this. End one of your desktops first.',
      detail: 'This needs 1 GPU slice(s); the quota allows 2 and 2 are in use.',
    });
  });

  it('keeps the field of a validation error', () => {
    expect(messageFor('BAD_USER_INPUT', 'spec.resources.gpu 3 exceeds the VDITemplate "x" resources.maxGPU 2', 'resources')).toMatchObject({
      title: 'Some of the settings are not accepted.',
      field: 'resources',
      detail: 'Spec.resources.gpu 3 exceeds the VDITemplate "x" resources.maxGPU 2.',
    });
  });

  it('never shows the text of an error that is not meant for users', () => {
    expect(messageFor('FORBIDDEN', 'forbidden: User "oidc:x" cannot delete …')).toEqual({
      code: 'FORBIDDEN',
      title: 'You are not allowed to do that.',
    });
    expect(messageFor('INTERNAL_SERVER_ERROR', 'internal error').detail).toBeUndefined();
  });

  it('turns an unknown code into a generic server error', () => {
    expect(messageFor('SOMETHING_NEW', 'x')).toMatchObject({
      code: 'INTERNAL_SERVER_ERROR',
      title: 'Something went wrong on the server. Please try again.',
    });
  });

  it('has a message for every code the service sends', () => {
    for (const code of ['UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'BAD_USER_INPUT', 'QUOTA_EXCEEDED', 'CONFLICT', 'UNAVAILABLE', 'RATE_LIMITED']) {
      expect(messageFor(code).code).toBe(code);
    }
  });
});

describe('describeError', () => {
  it('reads the code of the first GraphQL error', () => {
    expect(describeError(graphQLError('NOT_FOUND', 'session "a" not found'))).toMatchObject({ code: 'NOT_FOUND', detail: 'Session "a" not found.' });
  });

  it('calls a failed request a network problem', () => {
    expect(describeError(new CombinedError({ networkError: new TypeError('Failed to fetch') })).code).toBe('NETWORK');
  });

  it('recognises an expired sign-in', () => {
    expect(isUnauthenticated(graphQLError('UNAUTHENTICATED', 'your session has expired: sign in again'))).toBe(true);
    expect(isUnauthenticated(graphQLError('FORBIDDEN', 'no'))).toBe(false);
  });
});

describe('ErrorMessage', () => {
  it('is announced as an alert', () => {
    render(<ErrorMessage error={messageFor('QUOTA_EXCEEDED', 'this needs 2 GPU slice(s)')} />);
    const alert = screen.getByRole('alert');
    expect(alert.textContent).toContain('Your quota does not allow this.');
    expect(alert.textContent).toContain('This needs 2 GPU slice(s).');
  });
});
