import type { ErrorView } from '../lib/errors.ts';

export function ErrorMessage({ error, id }: { error: ErrorView; id?: string }) {
  return (
    <div className="alert" role="alert" id={id} data-code={error.code}>
      <p className="alert-title">{error.title}</p>
      {error.detail && <p>{error.detail}</p>}
    </div>
  );
}
