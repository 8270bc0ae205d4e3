// Reading the apiserver's audit log (ControlPlane's auditLog option) for what one identity asked and was refused:
// the permission each request needed, the permission each 403 names as missing, and the RBAC rules that grant them.
import type { AuditEvent } from '../../dev/control-plane.ts';
import type { PolicyRule } from './chart.ts';

/** An RBAC permission: a verb on `resource` (or `resource/subresource`) of an API group, optionally one object. */
export interface Permission {
  verb: string;
  group: string;
  resource: string;
  name?: string;
}

export const formatPermission = (p: Permission): string => `${p.verb} ${p.resource}${p.group ? `.${p.group}` : ''}${p.name ? ` "${p.name}"` : ''}`;

/** One request per audit ID: its last event (ResponseComplete, or ResponseStarted for a watch still open). */
export function requests(events: AuditEvent[]): AuditEvent[] {
  const byId = new Map<string, AuditEvent>();
  for (const e of events) byId.set(e.auditID, e);
  return [...byId.values()];
}

export const isForbidden = (e: AuditEvent): boolean => e.responseStatus?.code === 403;

/** The request's own verb on its object (undefined for non-resource paths such as /version). */
export function requestedPermission(e: AuditEvent): Permission | undefined {
  const ref = e.objectRef;
  if (!ref?.resource) return undefined;
  return {
    verb: e.verb,
    group: ref.apiGroup ?? '',
    resource: ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource,
    ...(ref.name && { name: ref.name }),
  };
}

const RBAC_DENIAL = /^(?:\S+ "([^"]*)" )?(?:\S+ )?is forbidden: User "[^"]*" cannot (\S+) resource "([^"]+)" in API group "([^"]*)"/;
const ESCALATION = /is attempting to grant RBAC permissions not currently held/;

/**
 * The permission a 403 says was missing, read from the apiserver's message, which names it even when it is
 * not the request's own verb: `create` for a server-side apply that would create the object, `impersonate users`
 * for a request made as a user, `bind` (on a ClusterRole the audit metadata does not name) for a RoleBinding
 * that would grant permissions the requester lacks.
 */
export function refusedPermission(e: AuditEvent): Permission | undefined {
  if (!isForbidden(e)) return undefined;
  const message = e.responseStatus?.message ?? '';
  const rbac = RBAC_DENIAL.exec(message);
  if (rbac) {
    const [, name, verb, resource, group] = rbac as unknown as [string, string | undefined, string, string, string];
    return { verb, group, resource, ...(name && { name }) };
  }
  if (ESCALATION.test(message)) return { verb: 'bind', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' };
  return undefined;
}

/**
 * The permissions an allowed request used: its own verb (plus `create` when a server-side apply created the
 * object), `impersonate` on the user and each group it acted as, and `bind` when it wrote a RoleBinding.
 * Impersonated requests are authorised as the user, so only the impersonation counts for the requester.
 */
export function usedPermissions(e: AuditEvent): Permission[] {
  const code = e.responseStatus?.code ?? 0;
  if (code === 401 || code === 403) return [];
  if (e.impersonatedUser) {
    return [
      { verb: 'impersonate', group: '', resource: 'users', name: e.impersonatedUser.username },
      ...(e.impersonatedUser.groups ?? [])
        .filter((g) => g !== 'system:authenticated')
        .map((g) => ({ verb: 'impersonate', group: '', resource: 'groups', name: g })),
    ];
  }
  const own = requestedPermission(e);
  if (!own) return [];
  const used = [own];
  if (own.verb === 'patch' && code === 201) used.push({ ...own, verb: 'create' });
  if (own.resource === 'rolebindings' && (own.verb === 'create' || own.verb === 'patch')) {
    used.push({ verb: 'bind', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' });
  }
  return used;
}

/**
 * Whether an RBAC rule grants the permission. A permission whose object the audit metadata does not name
 * (the ClusterRole of a `bind`) matches a rule limited to resourceNames.
 */
export function grants(rule: PolicyRule, p: Permission): boolean {
  const has = (list: string[] | undefined, v: string) => !!list && (list.includes(v) || list.includes('*'));
  if (!has(rule.apiGroups, p.group) || !has(rule.resources, p.resource) || !has(rule.verbs, p.verb)) return false;
  if (!rule.resourceNames?.length || p.name === undefined) return true;
  return rule.resourceNames.includes(p.name);
}

/** Each permission a rule spells out (one per API group, resource, verb and named object). */
export function permissionsOf(rule: PolicyRule): Permission[] {
  const names = rule.resourceNames?.length ? rule.resourceNames : [undefined];
  return rule.apiGroups.flatMap((group) =>
    rule.resources.flatMap((resource) => rule.verbs.flatMap((verb) => names.map((name) => ({ verb, group, resource, ...(name && { name }) })))),
  );
}
