// The vdi.kasm.io/v1alpha1 API as TypeScript types, shared by the reconciler, the GraphQL layer and the tests.
// deploy/crds/ holds the matching OpenAPI schemas; keep the two in step.

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

export type SessionPhase = 'Pending' | 'Starting' | 'Running' | 'Terminating' | 'Failed' | 'Expired';
export const SESSION_PHASES: readonly SessionPhase[] = ['Pending', 'Starting', 'Running', 'Terminating', 'Failed', 'Expired'];

/** The metav1.Condition shape. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/**
 * A Kubernetes resource quantity as the apiserver stores it: `8Gi` and `"4"` are strings, while a plain YAML
 * integer (`cpu: 2`) arrives as a number (the CRDs declare these fields int-or-string, as Kubernetes does).
 */
export type Quantity = string | number;

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
}

export interface VDISessionStatus {
  phase?: SessionPhase;
  reason?: string;
  message?: string;
  podName?: string;
  nodeName?: string;
  url?: string;
  startTime?: string;
  expiresAt?: string;
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
  persistence?: { defaultEnabled?: boolean; defaultSize?: Quantity; maxSize?: Quantity; mountPath?: string };
}

export interface VDITemplate {
  apiVersion: typeof API_VERSION;
  kind: typeof TEMPLATE_KIND;
  metadata: ObjectMeta;
  spec: VDITemplateSpec;
}
