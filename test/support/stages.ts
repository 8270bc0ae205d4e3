// The project's own kwok stages (failure modes the reconciler must report), for every control plane the
// tests start.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const stagesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cluster/stages');

/** Pods whose image tag is `broken` sit in ImagePullBackOff. */
export const IMAGE_PULL_BACKOFF_STAGE = path.join(stagesDir, 'pod-image-pull-backoff.yaml');

export const TEST_STAGES = [IMAGE_PULL_BACKOFF_STAGE];
