// Keeps deploy/crds/ and deploy/examples/ in step with the TypeScript API in operator/v1alpha1.ts.
// The apiserver itself (and the CEL rules) are exercised by the integration tests; these checks run without a cluster.
import { readFileSync } from 'node:fs';
import { dumpYaml, loadYaml, V1JSONSchemaProps, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  GROUP,
  SESSION_KIND,
  SESSION_PHASES,
  SESSION_PLURAL,
  TEMPLATE_KIND,
  TEMPLATE_PLURAL,
  API_VERSION,
  VERSION,
  type Condition,
  type IdlePolicySpec,
  type SessionPresence,
  type SessionResources,
  type TemplateResources,
  type VDISessionSpec,
  type VDISessionStatus,
  type VDITemplateSpec,
} from '../../operator/v1alpha1.ts';

// ---- Expected shapes, checked against the TS types by the compiler ------------------------------------------------
// `satisfies Presence<T>` fails to compile when a key is missing, extra, or marked required/optional wrongly, so these
// lists cannot drift from operator/v1alpha1.ts; the tests then hold the CRDs to them.

type Presence<T> = { readonly [K in keyof T]-?: Pick<T, K> extends Required<Pick<T, K>> ? 'required' : 'optional' };
type Shape = Readonly<Record<string, 'required' | 'optional'>>;
type ItemOf<T> = T extends readonly (infer I)[] ? I : never;

const SESSION_SPEC = {
  user: 'required',
  template: 'required',
  resources: 'optional',
  persistence: 'optional',
  timeout: 'optional',
  idleTimeout: 'optional',
  suspend: 'optional',
} as const satisfies Presence<VDISessionSpec>;
const SESSION_RESOURCES = { gpu: 'optional', memory: 'optional', cpu: 'optional' } as const satisfies Presence<SessionResources>;
const SESSION_PERSISTENCE = { enabled: 'optional', size: 'optional' } as const satisfies Presence<NonNullable<VDISessionSpec['persistence']>>;
const SESSION_STATUS = {
  phase: 'optional',
  reason: 'optional',
  message: 'optional',
  podName: 'optional',
  nodeName: 'optional',
  url: 'optional',
  startTime: 'optional',
  firstStartTime: 'optional',
  expiresAt: 'optional',
  stoppedAt: 'optional',
  resources: 'optional',
  presence: 'optional',
  observedGeneration: 'optional',
  conditions: 'optional',
} as const satisfies Presence<VDISessionStatus>;
const STATUS_RESOURCES = { gpu: 'required', cpu: 'required', memory: 'required' } as const satisfies Presence<
  NonNullable<VDISessionStatus['resources']>
>;
const SESSION_PRESENCE = { connected: 'required', lastActivity: 'required', idleSince: 'optional' } as const satisfies Presence<SessionPresence>;
const CONDITION = {
  type: 'required',
  status: 'required',
  reason: 'required',
  message: 'required',
  lastTransitionTime: 'required',
  observedGeneration: 'optional',
} as const satisfies Presence<Condition>;

const TEMPLATE_SPEC = {
  image: 'required',
  imagePullPolicy: 'optional',
  displayName: 'required',
  description: 'optional',
  resources: 'optional',
  applications: 'optional',
  encoder: 'optional',
  env: 'optional',
  sharedMemorySize: 'optional',
  defaultTimeout: 'optional',
  maxTimeout: 'optional',
  idle: 'optional',
  persistence: 'optional',
} as const satisfies Presence<VDITemplateSpec>;
const TEMPLATE_IDLE = {
  defaultTimeout: 'optional',
  maxTimeout: 'optional',
  warning: 'optional',
  maxAge: 'optional',
} as const satisfies Presence<IdlePolicySpec>;
const TEMPLATE_RESOURCES = {
  defaultGPU: 'optional',
  maxGPU: 'optional',
  defaultMemory: 'optional',
  maxMemory: 'optional',
  defaultCPU: 'optional',
  maxCPU: 'optional',
} as const satisfies Presence<TemplateResources>;
const TEMPLATE_APPLICATION = { name: 'required', icon: 'optional' } as const satisfies Presence<ItemOf<NonNullable<VDITemplateSpec['applications']>>>;
const TEMPLATE_ENV = { name: 'required', value: 'required' } as const satisfies Presence<ItemOf<NonNullable<VDITemplateSpec['env']>>>;
const TEMPLATE_PERSISTENCE = {
  defaultEnabled: 'optional',
  defaultSize: 'optional',
  maxSize: 'optional',
  mountPath: 'optional',
} as const satisfies Presence<NonNullable<VDITemplateSpec['persistence']>>;

// Records keyed by a union type must name every member exactly once.
const CONDITION_STATUSES = Object.keys({ True: true, False: true, Unknown: true } satisfies Record<Condition['status'], true>);
const PULL_POLICIES = Object.keys({ Always: true, IfNotPresent: true, Never: true } satisfies Record<
  NonNullable<VDITemplateSpec['imagePullPolicy']>,
  true
>);
const ENCODERS = Object.keys({ nvh264enc: true, vah264enc: true, x264enc: true, vp8enc: true, vp9enc: true } satisfies Record<
  NonNullable<VDITemplateSpec['encoder']>,
  true
>);

// ---- Loading ---------------------------------------------------------------------------------------------------------

/** A JSON-schema node with the keywords spelled as in the YAML (`x-kubernetes-validations`, not `x_kubernetes_validations`). */
interface Schema {
  type?: string;
  format?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  maxItems?: number;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: { rule: string; message?: string; fieldPath?: string }[];
  [keyword: string]: unknown;
}

const SCHEMA_ATTRIBUTES = V1JSONSchemaProps.getAttributeTypeMap();
const WIRE_KEYWORD = new Map(SCHEMA_ATTRIBUTES.map((attribute) => [attribute.name, attribute.baseName]));
const KNOWN_KEYWORDS = new Set(SCHEMA_ATTRIBUTES.map((attribute) => attribute.baseName));

/**
 * loadYaml types the top of a schema as V1JSONSchemaProps (renaming `x-kubernetes-*` keys) but leaves `items` as raw
 * YAML, so one tree mixes both spellings; bring every node back to the YAML spelling.
 */
function toWireSchema(node: object): Schema {
  const wire: Schema = {};
  for (const [key, value] of Object.entries(node) as [string, unknown][]) {
    if (value === undefined) continue;
    const keyword = WIRE_KEYWORD.get(key) ?? key;
    if (keyword === 'properties' && isRecord(value)) {
      wire.properties = Object.fromEntries(Object.entries(value).map(([field, child]) => [field, toWireSchema(child as object)]));
    } else if (keyword === 'items' && isRecord(value)) {
      wire.items = toWireSchema(value);
    } else {
      wire[keyword] = value;
    }
  }
  return wire;
}

function readRepoFile(relativePath: string): string {
  return readFileSync(new URL(`../../${relativePath}`, import.meta.url), 'utf8');
}

function loadCrd(relativePath: string) {
  const crd = loadYaml<V1CustomResourceDefinition>(readRepoFile(relativePath));
  const version = crd.spec.versions[0];
  const openAPIV3Schema = version?.schema?.openAPIV3Schema;
  if (!version || !openAPIV3Schema) throw new Error(`${relativePath} has no version with a schema`);
  return { crd, version, schema: toWireSchema(openAPIV3Schema) };
}

function loadExample(relativePath: string): Record<string, unknown> {
  const object: unknown = loadYaml(readRepoFile(relativePath));
  if (!isRecord(object)) throw new Error(`${relativePath} is not an object`);
  return object;
}

const SESSION_CRD_FILE = 'deploy/crds/vdi.kasm.io_vdisessions.yaml';
const TEMPLATE_CRD_FILE = 'deploy/crds/vdi.kasm.io_vditemplates.yaml';
const session = loadCrd(SESSION_CRD_FILE);
const template = loadCrd(TEMPLATE_CRD_FILE);
const aliceSession = loadExample('deploy/examples/alice-session.yaml');
const ubuntuTemplate = loadExample('deploy/examples/ubuntu-desktop-template.yaml');
const designSession = loadExample('docs/design/examples/vdisession.yaml');
const designTemplate = loadExample('docs/design/examples/vditemplate.yaml');

// ---- Schema helpers --------------------------------------------------------------------------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The schema at a dotted path; `name[]` steps into a list's items. */
function at(root: Schema, path: string): Schema {
  let node = root;
  for (const step of path.split('.')) {
    const field = step.endsWith('[]') ? step.slice(0, -2) : step;
    const child = node.properties?.[field];
    if (!child) throw new Error(`schema has no ${path} (stopped at ${step})`);
    node = step.endsWith('[]') ? (child.items ?? child) : child;
  }
  return node;
}

function expectShape(root: Schema, path: string, shape: Shape): void {
  const node = at(root, path);
  expect(node.type, `${path} type`).toBe('object');
  expect(Object.keys(node.properties ?? {}).sort(), `${path} properties`).toEqual(Object.keys(shape).sort());
  const required = Object.keys(shape).filter((key) => shape[key] === 'required');
  expect([...(node.required ?? [])].sort(), `${path} required`).toEqual(required.sort());
}

function hasType(type: string | undefined, value: unknown): boolean {
  switch (type) {
    case undefined:
      return true;
    case 'object':
      return isRecord(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    default:
      throw new Error(`unexpected schema type ${type}`);
  }
}

/** What the apiserver's OpenAPI validation would object to (everything but CEL and formats); empty when valid. */
function violations(schema: Schema, value: unknown, path = ''): string[] {
  const where = path || '(root)';
  if (isIntOrString(schema)) {
    if (!Number.isInteger(value) && typeof value !== 'string') return [`${where}: expected integer or string, got ${JSON.stringify(value)}`];
  } else if (!hasType(schema.type, value)) return [`${where}: expected ${schema.type}, got ${JSON.stringify(value)}`];
  const found: string[] = [];
  if (schema.enum && !schema.enum.includes(value)) found.push(`${where}: ${JSON.stringify(value)} is not in the enum`);
  if (typeof value === 'string') {
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) {
      found.push(`${where}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
    }
    if (schema.minLength !== undefined && value.length < schema.minLength) found.push(`${where}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) found.push(`${where}: longer than ${schema.maxLength}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) found.push(`${where}: below ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) found.push(`${where}: above ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) found.push(`${where}: more than ${schema.maxItems} items`);
    const items = schema.items;
    if (items) value.forEach((item, index) => found.push(...violations(items, item, `${path}[${index}]`)));
    const mapKeys = schema['x-kubernetes-list-map-keys'];
    if (schema['x-kubernetes-list-type'] === 'map' && mapKeys) {
      const keys = value.map((item: unknown) => JSON.stringify(mapKeys.map((key) => (isRecord(item) ? item[key] : undefined))));
      if (new Set(keys).size !== keys.length) found.push(`${where}: duplicate ${mapKeys.join('/')}`);
    }
  } else if (isRecord(value) && schema.properties) {
    const properties = schema.properties;
    for (const [key, child] of Object.entries(value)) {
      const childSchema = properties[key];
      if (!childSchema) found.push(`${path}.${key}: not declared in the schema`);
      else found.push(...violations(childSchema, child, `${path}.${key}`));
    }
    for (const key of schema.required ?? []) {
      if (value[key] === undefined) found.push(`${path}.${key}: required`);
    }
  }
  return found;
}

/**
 * `x-kubernetes-int-or-string: true` with the one structure the apiserver allows for it (anyOf integer | string,
 * no type of its own): a Kubernetes quantity, `cpu: 2` or `cpu: "500m"`.
 */
function isIntOrString(node: Schema): boolean {
  if (node['x-kubernetes-int-or-string'] !== true) return false;
  const anyOf = (node.anyOf ?? []) as Schema[];
  return node.type === undefined && anyOf.length === 2 && anyOf.some((s) => s.type === 'integer') && anyOf.some((s) => s.type === 'string');
}

/** Every schema node under root, with its dotted path. */
function* walk(node: Schema, path = ''): Generator<[string, Schema]> {
  yield [path || '(root)', node];
  for (const [field, child] of Object.entries(node.properties ?? {})) yield* walk(child, path ? `${path}.${field}` : field);
  if (node.items) yield* walk(node.items, `${path}[]`);
}

/** Keys as they appear in YAML text (`key:` at the start of a line or after `- `). */
function yamlKeys(text: string): Set<string> {
  return new Set([...text.matchAll(/^\s*(?:-\s+)?([A-Za-z$][\w$./-]*):(?=\s|$)/gm)].map((match) => match[1] ?? ''));
}

const QUANTITY_FIELDS: [string, Schema, string][] = [
  ['VDISession', session.schema, 'spec.resources.memory'],
  ['VDISession', session.schema, 'spec.resources.cpu'],
  ['VDISession', session.schema, 'spec.persistence.size'],
  ['VDITemplate', template.schema, 'spec.resources.defaultMemory'],
  ['VDITemplate', template.schema, 'spec.resources.maxMemory'],
  ['VDITemplate', template.schema, 'spec.resources.defaultCPU'],
  ['VDITemplate', template.schema, 'spec.resources.maxCPU'],
  ['VDITemplate', template.schema, 'spec.sharedMemorySize'],
  ['VDITemplate', template.schema, 'spec.persistence.defaultSize'],
  ['VDITemplate', template.schema, 'spec.persistence.maxSize'],
];
const DURATION_FIELDS: [string, Schema, string][] = [
  ['VDISession', session.schema, 'spec.timeout'],
  ['VDISession', session.schema, 'spec.idleTimeout'],
  ['VDITemplate', template.schema, 'spec.defaultTimeout'],
  ['VDITemplate', template.schema, 'spec.maxTimeout'],
  ['VDITemplate', template.schema, 'spec.idle.defaultTimeout'],
  ['VDITemplate', template.schema, 'spec.idle.maxTimeout'],
  ['VDITemplate', template.schema, 'spec.idle.warning'],
  ['VDITemplate', template.schema, 'spec.idle.maxAge'],
];

// ---- Tests -----------------------------------------------------------------------------------------------------------

describe.each([
  { kind: SESSION_KIND, plural: SESSION_PLURAL, file: SESSION_CRD_FILE, loaded: session },
  { kind: TEMPLATE_KIND, plural: TEMPLATE_PLURAL, file: TEMPLATE_CRD_FILE, loaded: template },
])('the $kind CustomResourceDefinition', ({ kind, plural, file, loaded }) => {
  const { crd, version, schema } = loaded;

  it('serves and stores the one vdi.kasm.io/v1alpha1 version', () => {
    expect(crd.apiVersion).toBe('apiextensions.k8s.io/v1');
    expect(crd.metadata?.name).toBe(`${plural}.${GROUP}`);
    expect(crd.metadata?.labels?.['app.kubernetes.io/part-of']).toBe('vdi-operator');
    expect(crd.spec.group).toBe(GROUP);
    expect(crd.spec.names.kind).toBe(kind);
    expect(crd.spec.names.plural).toBe(plural);
    expect(crd.spec.names.categories).toEqual(['vdi']);
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([[VERSION, true, true]]);
  });

  it('uses only keys the apiextensions.k8s.io/v1 model knows (a misspelt key would be silently dropped)', () => {
    const loadedKeys = yamlKeys(dumpYaml(crd));
    const dropped = [...yamlKeys(readRepoFile(file))].filter((key) => !loadedKeys.has(key));
    expect(dropped).toEqual([]);
    const unknown = [...walk(schema)].flatMap(([path, node]) =>
      Object.keys(node)
        .filter((keyword) => !KNOWN_KEYWORDS.has(keyword))
        .map((keyword) => `${path}: ${keyword}`),
    );
    expect(unknown).toEqual([]);
  });

  it('is structural without preserving unknown fields', () => {
    for (const [path, node] of walk(schema)) {
      if (!isIntOrString(node)) expect(node.type, `${path} type`).toBeDefined();
      expect(node['x-kubernetes-preserve-unknown-fields'], path).toBeUndefined();
    }
    expect(schema.required).toEqual(['spec']);
  });

  it('has printer columns that point at declared fields of the column type', () => {
    for (const column of version.additionalPrinterColumns ?? []) {
      const path = column.jsonPath.replace(/^\./, '');
      if (path === 'metadata.creationTimestamp') {
        expect(column.type, column.name).toBe('date');
        continue;
      }
      expect(column.type, column.name).toBe(at(schema, path).type);
    }
  });

  it('bounds every string and list that a CEL rule reads, so the rule fits the cost budget', () => {
    const unbounded: string[] = [];
    for (const [path, node] of walk(schema)) {
      for (const { rule } of node['x-kubernetes-validations'] ?? []) {
        const fields = [...rule.matchAll(/\bself\.(\w+)/g)].map((match) => match[1] ?? '');
        const read = /\b(self|oldSelf)\b(?!\.)/.test(rule) ? [[path, node] as const] : [];
        const touched = [...read, ...fields.map((field) => [`${path}.${field}`, at(node, field)] as const)];
        for (const [touchedPath, touchedNode] of touched) {
          const stringy = touchedNode.type === 'string' || isIntOrString(touchedNode);
          if (stringy && touchedNode.maxLength === undefined) unbounded.push(touchedPath);
          if (touchedNode.type === 'array' && touchedNode.maxItems === undefined) unbounded.push(touchedPath);
        }
      }
    }
    expect(unbounded).toEqual([]);
  });
});

describe('the VDISession schema', () => {
  const { crd, version, schema } = session;

  it('is namespaced, with short name vdis and a status subresource', () => {
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names.shortNames).toEqual(['vdis']);
    expect(version.subresources?.status).toEqual({});
  });

  it('declares exactly the fields of VDISessionSpec and VDISessionStatus', () => {
    expectShape(schema, 'spec', SESSION_SPEC);
    expectShape(schema, 'spec.resources', SESSION_RESOURCES);
    expectShape(schema, 'spec.persistence', SESSION_PERSISTENCE);
    expectShape(schema, 'status', SESSION_STATUS);
    expectShape(schema, 'status.presence', SESSION_PRESENCE);
    expectShape(schema, 'status.resources', STATUS_RESOURCES);
    expectShape(schema, 'status.conditions[]', CONDITION);
  });

  it('offers exactly SESSION_PHASES as phases', () => {
    expect(at(schema, 'status.phase').enum).toEqual([...SESSION_PHASES]);
  });

  it('writes conditions as metav1.Condition, one per type', () => {
    const conditions = at(schema, 'status.conditions');
    expect(conditions['x-kubernetes-list-type']).toBe('map');
    expect(conditions['x-kubernetes-list-map-keys']).toEqual(['type']);
    expect([...(at(schema, 'status.conditions[].status').enum ?? [])].sort()).toEqual([...CONDITION_STATUSES].sort());
    expect(at(schema, 'status.conditions[].observedGeneration').format).toBe('int64');
    expect(at(schema, 'status.conditions[].lastTransitionTime').format).toBe('date-time');
    const condition = at(schema, 'status.conditions[]');
    const valid = { type: 'Ready', status: 'True', reason: 'PodReady', message: '', lastTransitionTime: '2025-01-01T00:00:00Z' };
    expect(violations(condition, valid)).toEqual([]);
    expect(violations(condition, { ...valid, reason: '' })).not.toEqual([]);
    expect(violations(condition, { ...valid, type: 'not a type' })).not.toEqual([]);
  });

  it('has a boolean spec.suspend, as Kubernetes Jobs do, to stop and resume the desktop', () => {
    expect(at(schema, 'spec.suspend').type).toBe('boolean');
    expect(violations(at(schema, 'spec.suspend'), 'yes')).not.toEqual([]);
  });

  it('keeps spec.user and spec.template immutable', () => {
    for (const field of ['user', 'template']) {
      const rules = at(schema, `spec.${field}`)['x-kubernetes-validations'] ?? [];
      expect(rules, field).toContainEqual({ rule: 'self == oldSelf', message: `spec.${field} is immutable` });
    }
  });

  it('accepts a DNS-1123 subdomain as spec.template and nothing else', () => {
    const field = at(schema, 'spec.template');
    for (const name of ['ubuntu-desktop', 'gpu.v2', 'a']) expect(violations(field, name), name).toEqual([]);
    for (const name of ['Ubuntu', '-desktop', 'desktop-', 'a_b', '']) expect(violations(field, name), name).not.toEqual([]);
  });

  it('allows 0 or 1 GPU slice (a desktop can use one slice of a time-sliced GPU; see test/unit/gpu-model.test.ts)', () => {
    const gpu = at(schema, 'spec.resources.gpu');
    for (const count of [0, 1]) expect(violations(gpu, count), String(count)).toEqual([]);
    for (const count of [-1, 2, 8, 1.5, '1']) expect(violations(gpu, count), String(count)).not.toEqual([]);
  });

  it('shows User, Template, GPU, Phase, URL and Age, and Reason in wide output', () => {
    const columns = (version.additionalPrinterColumns ?? []).map((c) => [c.name, c.jsonPath, c.priority ?? 0]);
    expect(columns).toEqual([
      ['User', '.spec.user', 0],
      ['Template', '.spec.template', 0],
      ['GPU', '.status.resources.gpu', 0],
      ['Phase', '.status.phase', 0],
      ['URL', '.status.url', 0],
      ['Reason', '.status.reason', 1],
      ['Age', '.metadata.creationTimestamp', 0],
    ]);
  });
});

describe('the VDITemplate schema', () => {
  const { crd, version, schema } = template;

  it('is cluster-scoped, with short name vdit and no status', () => {
    expect(crd.spec.scope).toBe('Cluster');
    expect(crd.spec.names.shortNames).toEqual(['vdit']);
    expect(schema.properties?.status).toBeUndefined();
  });

  it('declares exactly the fields of VDITemplateSpec', () => {
    expectShape(schema, 'spec', TEMPLATE_SPEC);
    expectShape(schema, 'spec.resources', TEMPLATE_RESOURCES);
    expectShape(schema, 'spec.applications[]', TEMPLATE_APPLICATION);
    expectShape(schema, 'spec.env[]', TEMPLATE_ENV);
    expectShape(schema, 'spec.persistence', TEMPLATE_PERSISTENCE);
    expectShape(schema, 'spec.idle', TEMPLATE_IDLE);
  });

  it('offers exactly the pull policies and encoders of the TS type', () => {
    expect([...(at(schema, 'spec.imagePullPolicy').enum ?? [])].sort()).toEqual([...PULL_POLICIES].sort());
    expect([...(at(schema, 'spec.encoder').enum ?? [])].sort()).toEqual([...ENCODERS].sort());
  });

  it('allows 0 or 1 GPU slice as default and maximum', () => {
    for (const path of ['spec.resources.defaultGPU', 'spec.resources.maxGPU']) {
      expect(at(schema, path).type, path).toBe('integer');
      expect([at(schema, path).minimum, at(schema, path).maximum], path).toEqual([0, 1]);
    }
  });

  it('rejects an idle default timeout above the idle maximum with a CEL rule', () => {
    const rules = at(schema, 'spec.idle')['x-kubernetes-validations'] ?? [];
    expect(rules.map((r) => r.rule)).toContain(
      '!has(self.defaultTimeout) || !has(self.maxTimeout) || duration(self.defaultTimeout) <= duration(self.maxTimeout)',
    );
  });

  it('rejects a default GPU count above the maximum with a CEL rule', () => {
    const rules = at(schema, 'spec.resources')['x-kubernetes-validations'] ?? [];
    expect(rules.map((r) => r.rule)).toContain('!has(self.defaultGPU) || !has(self.maxGPU) || self.defaultGPU <= self.maxGPU');
  });

  it('keys env on a C-identifier name and applications on their name', () => {
    const env = at(schema, 'spec.env');
    expect([env['x-kubernetes-list-type'], env['x-kubernetes-list-map-keys']]).toEqual(['map', ['name']]);
    const apps = at(schema, 'spec.applications');
    expect([apps['x-kubernetes-list-type'], apps['x-kubernetes-list-map-keys'], apps.maxItems]).toEqual(['map', ['name'], 64]);
    const name = at(schema, 'spec.env[].name');
    for (const ok of ['DISPLAY', 'SELKIES_ENCODER', '_x1']) expect(violations(name, ok), ok).toEqual([]);
    for (const bad of ['1X', 'A-B', 'A B', '']) expect(violations(name, bad), bad).not.toEqual([]);
    expect(
      violations(env, [
        { name: 'A', value: '1' },
        { name: 'A', value: '2' },
      ]),
    ).not.toEqual([]);
  });

  it('shows Display Name, Image, Default GPU, Max GPU and Age', () => {
    expect((version.additionalPrinterColumns ?? []).map((c) => [c.name, c.jsonPath])).toEqual([
      ['Display Name', '.spec.displayName'],
      ['Image', '.spec.image'],
      ['Default GPU', '.spec.resources.defaultGPU'],
      ['Max GPU', '.spec.resources.maxGPU'],
      ['Age', '.metadata.creationTimestamp'],
    ]);
  });
});

describe.each(QUANTITY_FIELDS)('the %s quantity field', (_kind, root, path) => {
  const field = at(root, path);

  it(`${path} is int-or-string, as Kubernetes quantities are (a YAML \`cpu: 2\` is an integer)`, () => {
    expect(isIntOrString(field)).toBe(true);
    expect(field.maxLength).toBe(64);
  });

  it.each(['8Gi', '500m', '4', '1.5', '100M', '2e3', 2, 16])(`${path} accepts %j`, (value) => {
    expect(violations(field, value)).toEqual([]);
  });

  it.each(['8GB', 'lots', '', '8 Gi', '4 cores', 1.5, true, null])(`${path} rejects %j`, (value) => {
    expect(violations(field, value)).not.toEqual([]);
  });
});

describe('CEL rules over quantities', () => {
  it('read int-or-string fields through string(), so an integer default compares with a string maximum', () => {
    const rules = [template.schema, at(template.schema, 'spec.resources'), at(template.schema, 'spec.persistence')]
      .flatMap((node) => node['x-kubernetes-validations'] ?? [])
      .map((r) => r.rule)
      .filter((rule) => rule.includes('quantity('));
    expect(rules.length).toBe(3);
    for (const rule of rules) expect(rule, rule).not.toMatch(/quantity\(self\./);
  });
});

describe.each(DURATION_FIELDS)('the %s duration field', (_kind, root, path) => {
  const field = at(root, path);

  it.each(['8h', '90m', '1h30m', '45s', '1h0m30s', '24h'])(`${path} accepts %s`, (value) => {
    expect(field.type).toBe('string');
    expect(violations(field, value)).toEqual([]);
  });

  it.each(['8 hours', '1d', '', '30m1h', '1.5h', 'h', '8H'])(`${path} rejects %j`, (value) => {
    expect(violations(field, value)).not.toEqual([]);
  });
});

describe('the schema check used on the examples', () => {
  it('notices undeclared fields, wrong types, missing required fields and bad values', () => {
    const spec = aliceSession.spec as Record<string, unknown>;
    const checks: [unknown, string][] = [
      [{ ...aliceSession, spec: { ...spec, gpus: 1 } }, '.spec.gpus: not declared in the schema'],
      [{ ...aliceSession, spec: { ...spec, resources: { gpu: '1' } } }, '.spec.resources.gpu: expected integer, got "1"'],
      [{ ...aliceSession, spec: { template: 'ubuntu-desktop' } }, '.spec.user: required'],
      [{ ...aliceSession, spec: { ...spec, timeout: '1d' } }, '.spec.timeout: "1d" does not match'],
      [{ ...aliceSession, status: { phase: 'Sleeping' } }, '.status.phase: "Sleeping" is not in the enum'],
    ];
    for (const [object, problem] of checks) {
      expect(violations(session.schema, object)).toContainEqual(expect.stringContaining(problem));
    }
  });
});

describe('the examples', () => {
  it('alice-session is a valid VDISession in vdi-alice', () => {
    expect([aliceSession.apiVersion, aliceSession.kind]).toEqual([API_VERSION, SESSION_KIND]);
    expect(aliceSession.metadata).toMatchObject({ name: 'alice-desktop', namespace: 'vdi-alice' });
    expect(violations(session.schema, aliceSession)).toEqual([]);
  });

  it('ubuntu-desktop-template is a valid cluster-scoped VDITemplate with a pinned image', () => {
    expect([ubuntuTemplate.apiVersion, ubuntuTemplate.kind]).toEqual([API_VERSION, TEMPLATE_KIND]);
    expect(ubuntuTemplate.metadata).toMatchObject({ name: 'ubuntu-desktop' });
    expect((ubuntuTemplate.metadata as Record<string, unknown>).namespace).toBeUndefined();
    expect(violations(template.schema, ubuntuTemplate)).toEqual([]);
    const spec = ubuntuTemplate.spec as VDITemplateSpec;
    expect(spec.image).toMatch(/:[\w.-]+$/);
    expect(spec.image).not.toMatch(/:latest$/);
  });

  it('alice-session names the example template and stays within its limits', () => {
    const sessionSpec = aliceSession.spec as VDISessionSpec;
    const templateSpec = ubuntuTemplate.spec as VDITemplateSpec;
    expect(sessionSpec.template).toBe((ubuntuTemplate.metadata as Record<string, unknown>).name);
    expect(sessionSpec.resources?.gpu).toBeLessThanOrEqual(templateSpec.resources?.maxGPU ?? 0);
  });
});

describe("the design's examples, as the design writes them", () => {
  it('use plain YAML integers for CPU, as the design does', () => {
    expect((designSession.spec as VDISessionSpec).resources?.cpu).toBe(2);
    expect((designTemplate.spec as VDITemplateSpec).resources).toMatchObject({ defaultCPU: 2, maxCPU: 8 });
  });

  it('are a valid VDISession in the shared namespace vdi (status block included) and a valid VDITemplate', () => {
    expect(designSession.metadata).toMatchObject({ namespace: 'vdi' });
    expect(designSession.status).toBeDefined();
    expect(violations(session.schema, designSession)).toEqual([]);
    expect(violations(template.schema, designTemplate)).toEqual([]);
    expect((designSession.spec as VDISessionSpec).template).toBe((designTemplate.metadata as Record<string, unknown>).name);
  });
});
