// What the reconciler needs to know about the cluster it runs in. src/config.ts reads the environment once at
// start-up and builds this object (reconcilerConfigFrom); everything in operator/ takes it as an argument.
import { parseDuration } from '../formats/duration.ts';

export interface ReconcilerConfig {
  /** Base domain of session hosts, e.g. `vdi.example.com`. */
  domain: string;
  /** `{name}`, `{namespace}` and `{domain}` are substituted; see sessionHost() for the fallback. */
  hostPattern: string;
  urlScheme: 'https' | 'http';
  /** Port in session URLs when the entry point is not on the scheme's default port; the route matches the host alone. */
  urlPort?: number;
  /** TLS on the route: a certificate Secret (wildcard for the domain) or a Traefik certResolver. */
  tls: { secretName?: string; certResolver?: string } | undefined;
  ingressMode: 'traefik' | 'ingress';
  ingressClassName?: string;
  traefikEntryPoints: string[];
  /** The service's forwardAuth URL, e.g. `http://vdi-operator.vdi-system.svc:8080/auth/forward`. */
  authEndpoint: string;
  /** Selkies fetches TURN credentials from `<base>/<namespace>/<session>/<token>`. */
  turnRestBaseUrl: string;
  /** Desktops report their clients to `<base>/<namespace>/<session>/connected|disconnected` (src/desktop-access/presence.ts). */
  presenceBaseUrl: string;
  storageClassName?: string;
  /** Only set on pods with a GPU: K3s injects the driver only under this runtime class. */
  runtimeClassName: string;
  gpuResourceName: string;
  /** Where the ingress controller's pods run: the only peers allowed to reach a desktop's port. */
  ingressControllerNamespace: string;
  ingressControllerPodLabels: Record<string, string>;
  /** TURN relay pods (in turnNamespace, or the session's namespace when unset) may reach desktops on any port. */
  turnNamespace?: string;
  turnPodLabels?: Record<string, string>;
  /** A hostNetwork TURN relay arrives from node addresses, which no podSelector matches: allow these CIDRs. */
  turnCidrs?: string[];
  /** Used when neither the session nor its template names a timeout, e.g. `8h`. */
  defaultSessionTimeout: string;
}

/**
 * The config checked, as a deep copy (one config's arrays and maps are never another's); throws on an unusable one.
 * The values come from src/config.ts, the one place that reads the environment and holds the defaults.
 */
export function validateReconcilerConfig(input: ReconcilerConfig): ReconcilerConfig {
  const config: ReconcilerConfig = structuredClone(input);
  const problems: string[] = [];
  if (!config.domain) problems.push('domain is empty');
  // Without {name} every session would get the same host.
  if (!config.hostPattern.includes('{name}')) problems.push(`hostPattern "${config.hostPattern}" lacks {name}`);
  if (!parseDuration(config.defaultSessionTimeout)) {
    problems.push(`defaultSessionTimeout "${config.defaultSessionTimeout}" is not a positive duration such as 8h`);
  }
  if (config.ingressMode !== 'traefik' && config.ingressMode !== 'ingress') {
    problems.push(`ingressMode "${String(config.ingressMode)}" is neither traefik nor ingress`);
  }
  if (config.tls && !config.tls.secretName && !config.tls.certResolver) {
    problems.push('tls needs a secretName or a certResolver');
  }
  if (problems.length > 0) throw new Error(`invalid reconciler config: ${problems.join('; ')}`);
  return config;
}
