// What a session's phase and reason mean to a person: the words of the status badge and of the line under it.
import type { SessionPhase } from '../__generated__/graphql.ts';

export type Tone = 'waiting' | 'progress' | 'ok' | 'ending' | 'bad' | 'over';

export interface PhaseView {
  label: string;
  tone: Tone;
  /** What is happening now (or why it stopped), in words. */
  activity: string;
  /** The step of Pending → Starting → Running this is at; undefined once the session is over. */
  step?: 0 | 1 | 2;
  /** The desktop is up: its URL can be opened. */
  usable: boolean;
  /** Nothing more will happen but removal. */
  ended: boolean;
}

export const STEPS = ['Pending', 'Starting', 'Running'] as const;

const ACTIVITY: Record<string, string> = {
  // Pending
  Creating: 'Creating the desktop',
  Scheduling: 'Finding a node for the desktop',
  WaitingForGPU: 'Waiting for a free GPU slice',
  Unschedulable: 'No node can run this desktop at the moment',
  PodTerminating: 'Replacing the previous desktop',
  TemplateNotFound: 'Waiting for its template to exist',
  // Starting
  ContainerCreating: 'Pulling the image and creating the container',
  PodInitializing: 'Preparing the desktop',
  WaitingForReadiness: 'Waiting for the desktop to answer',
  Routing: 'Setting up the desktop’s address',
  // Running
  Ready: 'Ready',
  // Failed
  ErrImagePull: 'The desktop image could not be downloaded',
  ImagePullBackOff: 'The desktop image could not be downloaded',
  InvalidImageName: 'The template names an image that does not exist',
  CrashLoopBackOff: 'The desktop keeps crashing as it starts',
  CreateContainerConfigError: 'The desktop container is misconfigured',
  ExceedsTemplateLimits: 'The requested resources exceed the template’s limits',
  InvalidSpec: 'The session’s settings are invalid',
  InvalidTemplate: 'The template is invalid',
  PodLost: 'The desktop disappeared after it had started',
  DesktopExited: 'The desktop stopped',
  Evicted: 'The node evicted the desktop',
  OOMKilled: 'The desktop ran out of memory',
  // Stopped (the GPU slice given back; the session can be resumed)
  Idle: 'Stopped because nobody was connected; resume it to continue',
  MaxAge: 'Stopped after running for its maximum time; resume it to continue',
  Suspended: 'Stopped; resume it to continue',
  // Expired / Terminating
  Timeout: 'Reached its time limit',
  Deleted: 'Shutting down',
};

/** `WaitingForGPU` → `Waiting for GPU`: a reason nobody wrote words for yet is still readable. */
export function reasonInWords(reason: string): string {
  const words = reason.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2');
  return (
    words.charAt(0).toUpperCase() +
    words
      .slice(1)
      .toLowerCase()
      .replace(/\bgpu\b/g, 'GPU')
  );
}

export function describePhase(status: { phase: SessionPhase; reason?: string | null }): PhaseView {
  const known = status.reason ? ACTIVITY[status.reason] : undefined;
  const activity = known ?? (status.reason ? reasonInWords(status.reason) : '');
  switch (status.phase) {
    case 'Pending':
      return { label: 'Pending', tone: 'waiting', activity: activity || 'Waiting to be scheduled', step: 0, usable: false, ended: false };
    case 'Starting':
      return { label: 'Starting', tone: 'progress', activity: activity || 'Starting the desktop', step: 1, usable: false, ended: false };
    case 'Running':
      return { label: 'Running', tone: 'ok', activity: 'Ready', step: 2, usable: true, ended: false };
    case 'Stopped':
      // Not ended: resumeVDISession brings the same session back with the same home.
      return { label: 'Stopped', tone: 'over', activity: activity || 'Stopped; resume it to continue', usable: false, ended: false };
    case 'Terminating':
      return { label: 'Ending', tone: 'ending', activity: 'Shutting down', usable: false, ended: true };
    case 'Failed':
      return { label: 'Failed', tone: 'bad', activity: activity || 'The desktop could not start', usable: false, ended: true };
    case 'Expired':
      return { label: 'Expired', tone: 'over', activity: known ?? 'Reached its time limit', usable: false, ended: true };
  }
}
