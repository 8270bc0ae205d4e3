// The image's HEALTHCHECK: exits 0 when the service on this host answers /healthz, 1 otherwise. The image has no
// curl or wget, so Node itself asks. Kubernetes uses its own probes (the chart's); this serves `docker run`.
const port = process.env.PORT || '8080';
const url = `http://127.0.0.1:${port}/healthz`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
