import type { SessionPhase } from '../__generated__/graphql.ts';
import { describePhase, STEPS } from '../lib/phase.ts';

export function PhaseBadge({ phase, reason }: { phase: SessionPhase; reason?: string | null }) {
  const view = describePhase({ phase, reason });
  return (
    <span className={`badge tone-${view.tone}`} data-phase={phase}>
      {view.label}
    </span>
  );
}

/** Pending → Starting → Running, with the current step marked for assistive technology too. */
export function PhaseSteps({ step }: { step: 0 | 1 | 2 }) {
  return (
    <ol className="steps" aria-label="Progress">
      {STEPS.map((name, i) => (
        <li key={name} className={i < step ? 'done' : i === step ? 'current' : 'todo'} aria-current={i === step ? 'step' : undefined}>
          {name}
        </li>
      ))}
    </ol>
  );
}
