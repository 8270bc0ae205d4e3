// One real control plane per test run, shared by the integration test files (each test uses its own namespace).
import type { TestProject } from 'vitest/node';
import { ControlPlane, datastoreFromEnv } from '../../dev/control-plane.ts';
import { TEST_STAGES } from '../support/stages.ts';

export interface ClusterInfo {
  kubeconfig: string;
  kubectl: string;
  apiserverUrl: string;
  etcdUrl: string;
  adminToken: string;
  caFile: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  // A project's `env` reaches its test workers, not this process: the datastore is read from the project's config.
  const datastore = datastoreFromEnv({ VDI_DATASTORE: project.config.env?.VDI_DATASTORE ?? process.env.VDI_DATASTORE });
  const cp = await ControlPlane.start({ datastore, extraStages: TEST_STAGES, log: (line) => console.log(`[cluster ${datastore}] ${line}`) });
  await cp.applyManifests('deploy/rbac');
  console.log(`[cluster ${datastore}] shared control plane up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  project.provide('cluster', {
    kubeconfig: cp.kubeconfigPath,
    kubectl: cp.bins.kubectl!,
    apiserverUrl: cp.apiserverUrl,
    etcdUrl: cp.etcdUrl,
    adminToken: cp.adminToken,
    caFile: `${cp.dir}/certs/apiserver.crt`,
  });
  return async () => {
    console.log('[cluster] memory (MiB):', JSON.stringify(await cp.memoryMiB()));
    await cp.stop();
  };
}
