// `npm run cluster`: starts the local control plane and keeps it up until Ctrl-C, printing how to use it.
// `npm run cluster -- --build-only` builds (or finds) the binaries and exits.
import { ControlPlane, ensureBinaries } from './control-plane.ts';

const log = (line: string) => console.error(`[cluster] ${line}`);
if (process.argv.includes('--build-only')) {
  const started = Date.now();
  const bins = await ensureBinaries(log);
  log(`binaries ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${Object.values(bins).join(' ')}`);
} else {
  const started = Date.now();
  const cp = await ControlPlane.start({ log });
  await cp.applyManifests('deploy/rbac');
  log(`up in ${((Date.now() - started) / 1000).toFixed(1)} s; memory (MiB): ${JSON.stringify(await cp.memoryMiB())}`);
  console.log(`export KUBECONFIG=${cp.kubeconfigPath}\nalias kubectl=${cp.bins.kubectl}`);
  log('Ctrl-C stops it and removes its files');
  await new Promise(() => {});
}
