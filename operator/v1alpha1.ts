// The vdi.kasm.io/v1alpha1 API as TypeScript types, shared by the reconciler, the GraphQL layer and the tests.
// deploy/crds/ holds the matching OpenAPI schemas; keep the two in step.
import type { Quantity } from '../formats/quantity.ts';

export type { Quantity };

export const GROUP = 'vdi.kasm.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const SESSION_KIND = 'VDISession';
export const SESSION_PLURAL = 'vdisessions';
export const TEMPLATE_KIND = 'VDITemplate';
export const TEMPLATE_PLURAL = 'vditemplates';

/** Labels and annotations the project writes, under its own prefix. */
export const LABEL_SESSION = `${GROUP}/session`;
export const LABEL_USER = `${GROUP}/user`;
export const LABEL_TEMPLATE = `${GROUP}/template`;
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGER = 'vdi-operator';
export const FINALIZER = `${GROUP}/cleanup`;
/**
 * Why the reconciler set spec.suspend (`Idle` or `MaxAge`), written in the same patch. Absent when a person
 * suspended the session; the reconciler removes it when the session resumes.
 */
export const ANNOTATION_STOP_REASON = `${GROUP}/stop-reason`;
/** When the session was last extended (extendVDISession): like a client connecting, it restarts the idle clock. */
export const ANNOTATION_EXTENDED_AT = `${GROUP}/extended-at`;

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export type SessionPhase = 'Pending' | 'Starting' | 'Running' | 'Stopped' | 'Terminating' | 'Failed' | 'Expired';
export const SESSION_PHASES: readonly SessionPhase[] = ['Pending', 'Starting', 'Running', 'Stopped', 'Terminating', 'Failed', 'Expired'];

/** The metav1.Condition shape. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface SessionResources {
  /** Number of GPU time-slices; 0 is a CPU-only desktop (x264enc). */
  gpu?: number;
  memory?: Quantity;
  cpu?: Quantity;
}

export interface VDISessionSpec {
  /** The owner's username as the cluster knows it (without the OIDC prefix), e.g. alice@example.com. */
  user: string;
  template: string;
  resources?: SessionResources;
  persistence?: { enabled?: boolean; size?: Quantity };
  /** A duration such as 8h, 90m or 1h30m; absent means the template's default. */
  timeout?: string;
  /**
   * How long the desktop may go without a client before it is stopped (within the template's idle.maxTimeout);
   * absent means the template's idle.defaultTimeout.
   */
  idleTimeout?: string;
  /**
   * True: the desktop is stopped (no pod, no GPU slice; the home volume stays). The reconciler sets it when the
   * desktop idles past its timeout; clearing it resumes the session, as with a Kubernetes Job.
   */
  suspend?: boolean;
}

/**
 * What the desktop itself reported about its clients (Selkies' run_after_connect/run_after_disconnect hooks),
 * written by the service's presence endpoint only. Absent: the desktop has said nothing in this run (unknown).
 */
export interface SessionPresence {
  /** Whether a client is connected now. */
  connected: boolean;
  /** When the desktop last reported a change (its own clock), a client connecting or the last one leaving. */
  lastActivity: string;
  /** When the last client left; absent while one is connected. */
  idleSince?: string;
}

export interface VDISessionStatus {
  phase?: SessionPhase;
  reason?: string;
  message?: string;
  podName?: string;
  nodeName?: string;
  url?: string;
  /** When the desktop of the current run became Running; absent while stopped. */
  startTime?: string;
  /** When the desktop first became Running, once that differs from startTime (after a stop); absent: startTime. The expiry counts from here. */
  firstStartTime?: string;
  expiresAt?: string;
  /** When the desktop was last stopped (phase Stopped). */
  stoppedAt?: string;
  /** What the desktop runs with: its pod's limits once it has one, else the session's values or its template's defaults (kubectl's GPU column). */
  resources?: { gpu: number; cpu: string; memory: string };
  presence?: SessionPresence;
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface VDISession {
  apiVersion: typeof API_VERSION;
  kind: typeof SESSION_KIND;
  metadata: ObjectMeta;
  spec: VDISessionSpec;
  status?: VDISessionStatus;
}

export interface TemplateResources {
  defaultGPU?: number;
  maxGPU?: number;
  defaultMemory?: Quantity;
  maxMemory?: Quantity;
  defaultCPU?: Quantity;
  maxCPU?: Quantity;
}

/** When an unwatched desktop gives its GPU slice back (see docs/adr/0009-idle-reclaim.md). */
export interface IdlePolicySpec {
  /** How long a desktop may go without a client before it is stopped; absent: never for idleness. */
  defaultTimeout?: string;
  /** The longest idle timeout a session may ask for (spec.idleTimeout). */
  maxTimeout?: string;
  /** How long before a stop the session is warned (the IdleWarning condition); default 5m. */
  warning?: string;
  /** The longest a desktop runs in one go, clients or not, before it is stopped (resumable); absent: no limit. */
  maxAge?: string;
}

export interface VDITemplateSpec {
  /** Pinned Selkies EGL desktop image, e.g. ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20241222100454. */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  displayName: string;
  description?: string;
  resources?: TemplateResources;
  applications?: { name: string; icon?: string }[];
  /** Encoder used when the session has a GPU slice; CPU-only sessions always use x264enc. */
  encoder?: 'nvh264enc' | 'vah264enc' | 'x264enc' | 'vp8enc' | 'vp9enc';
  env?: { name: string; value: string }[];
  /** Size of the memory-backed /dev/shm. */
  sharedMemorySize?: Quantity;
  defaultTimeout?: string;
  maxTimeout?: string;
  idle?: IdlePolicySpec;
  persistence?: { defaultEnabled?: boolean; defaultSize?: Quantity; maxSize?: Quantity; mountPath?: string };
}

export interface VDITemplate {
  apiVersion: typeof API_VERSION;
  kind: typeof TEMPLATE_KIND;
  metadata: ObjectMeta;
  spec: VDITemplateSpec;
}
