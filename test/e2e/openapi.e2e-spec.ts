import Ajv2020 from 'ajv/dist/2020';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { eventually, useOpenAIGateway } from '../support/gateway-harness';

const SPEC_PATH = process.env.SPEC_PATH || '/work/shared/spec/mixpeek-raw-inference.md';
/** The spec's schemas the gateway must serve unchanged in shape. */
const SPEC_SCHEMAS = ['RawInferenceRequest', 'RawInferenceResponse', 'ErrorResponse', 'ErrorDetail', 'HTTPValidationError', 'ValidationError'];

/** The YAML of the spec's ```` ```yaml ```` OpenAPI block, parsed. */
function specOpenApi(): any {
  if (!existsSync(SPEC_PATH)) throw new Error(`The spec is not at ${SPEC_PATH}: set SPEC_PATH to mixpeek-raw-inference.md`);
  const markdown = readFileSync(SPEC_PATH, 'utf8');
  const block = /^(`{3,})yaml[^\n]*\n([\s\S]*?)^\1\s*$/m.exec(markdown);
  if (!block) throw new Error(`no yaml block in ${SPEC_PATH}`);
  return parse(block[2]);
}

/**
 * What a schema says about the data it accepts, without its prose: property names and their
 * shapes, types (anyOf included), required lists, enums, bounds, defaults and $refs. Titles,
 * descriptions and examples are left out: those are allowed to be ours.
 */
function shape(schema: any): any {
  if (schema === true || schema === false || schema === undefined) return schema;
  const out: Record<string, unknown> = {};
  for (const key of ['type', '$ref', 'enum', 'minimum', 'maximum', 'default', 'format']) {
    if (schema[key] !== undefined) out[key] = schema[key];
  }
  if (schema.anyOf) out.anyOf = schema.anyOf.map(shape);
  if (schema.items) out.items = shape(schema.items);
  if (schema.additionalProperties !== undefined) out.additionalProperties = shape(schema.additionalProperties);
  if (schema.properties) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([name, p]) => [name, shape(p)]));
  }
  out.required = [...(schema.required ?? [])].sort();
  return out;
}

function refsIn(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => refsIn(v, found));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') found.push(v);
      else refsIn(v, found);
    }
  }
  return found;
}

describe('OpenAPI: /openapi.json and /docs', () => {
  const t = useOpenAIGateway({ API_KEYS: 'k-openapi' });
  const spec = specOpenApi();
  let doc: any;
  let ajv: Ajv2020;
  const auth = { authorization: 'Bearer k-openapi' };

  beforeAll(async () => {
    const res = await t.gw.request('GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    doc = res.body;
    ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addFormat('date-time', true);
    ajv.addSchema({ $id: 'doc', components: doc.components });
  });

  /** Validates a real answer of the API against a schema of the served document. */
  function expectValid(schemaName: string, body: unknown): void {
    const validate = ajv.getSchema(`doc#/components/schemas/${schemaName}`)!;
    expect(validate).toBeDefined();
    const ok = validate(body);
    expect({ ok, errors: validate.errors ?? null, body }).toMatchObject({ ok: true, errors: null });
  }

  it('is served without an API key, as OpenAPI 3.1 with the spec\'s schema names', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe(spec.info.version);
    for (const name of SPEC_SCHEMAS) expect(Object.keys(doc.components.schemas)).toContain(name);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it.each(SPEC_SCHEMAS)('%s matches the spec field by field', (name) => {
    const ours = doc.components.schemas[name];
    const theirs = spec.components.schemas[name];
    expect(theirs).toBeDefined();
    expect(ours.type).toBe(theirs.type);
    expect(Object.keys(ours.properties).sort()).toEqual(Object.keys(theirs.properties).sort());
    expect([...(ours.required ?? [])].sort()).toEqual([...(theirs.required ?? [])].sort());
    for (const property of Object.keys(theirs.properties)) {
      expect({ property, ...shape(ours.properties[property]) }).toEqual({ property, ...shape(theirs.properties[property]) });
    }
    expect(shape(ours)).toEqual(shape(theirs));
  });

  it('POST /v1/inference has the spec\'s request body, responses and operation id', () => {
    const ours = doc.paths['/v1/inference'].post;
    const theirs = spec.paths['/v1/inference'].post;
    expect(ours.operationId).toBe(theirs.operationId);
    expect(ours.requestBody.required).toBe(true);
    expect(ours.requestBody.content['application/json'].schema).toEqual(theirs.requestBody.content['application/json'].schema);
    for (const [status, response] of Object.entries<any>(theirs.responses)) {
      expect({ status, schema: ours.responses[status]?.content['application/json'].schema }).toEqual({ status, schema: response.content['application/json'].schema });
    }
    // Ours besides the spec's: 202 with a job reference, and the statuses of DESIGN.md's errors.
    expect(ours.responses['202'].content['application/json'].schema.$ref).toBe('#/components/schemas/JobReference');
    for (const status of ['429', '503', '504']) expect(ours.responses[status].content['application/json'].schema.$ref).toBe('#/components/schemas/ErrorResponse');
    expect(ours.parameters).toContainEqual(expect.objectContaining({ name: 'Prefer', in: 'header', required: false }));
    expect(ours.security).toBeUndefined(); // the document-wide bearer requirement applies
    expect(doc.security).toEqual([{ bearer: [] }]);
  });

  it('documents the job endpoints and /health (public: security [])', () => {
    const job = doc.paths['/v1/inference/jobs/{id}'];
    expect(job.get.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/JobView');
    expect(job.delete.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/JobView');
    expect(job.delete.responses['202']).toBeDefined();
    for (const op of [job.get, job.delete]) {
      expect(op.parameters).toEqual([expect.objectContaining({ name: 'id', in: 'path', required: true })]);
      expect(op.responses['404'].content['application/json'].schema.$ref).toBe('#/components/schemas/ErrorResponse');
      expect(op.security).toBeUndefined();
    }
    expect(doc.paths['/health'].get.security).toEqual([]);
    expect(doc.paths['/health'].get.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/HealthStatus');
  });

  it('the security each operation states is what the API enforces (every GET without path parameters, called without a key)', async () => {
    const checked: string[] = [];
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      if (!item.get || path.includes('{')) continue;
      const needsKey = (item.get.security ?? doc.security).length > 0;
      const res = await t.gw.request('GET', path);
      checked.push(`${path} ${needsKey ? 'key' : 'open'} ${res.status}`);
      expect({ path, refused: [401, 403].includes(res.status) }).toEqual({ path, refused: needsKey });
    }
    expect(checked).toContainEqual(expect.stringMatching(/^\/health open 200$/));
  });

  it('every $ref points at a schema the document has', () => {
    const refs = refsIn(doc);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) expect(Object.keys(doc.components.schemas).map((n) => `#/components/schemas/${n}`)).toContain(ref);
    expect(doc.components.schemas.RawInferenceRequestDto).toBeUndefined();
  });

  it('the API\'s real answers validate against the served schemas', async () => {
    const chat = { provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: ['hi'] } };
    expectValid('RawInferenceRequest', chat);
    const ok = await t.gw.infer(chat, auth);
    expect(ok.status).toBe(200);
    expectValid('RawInferenceResponse', ok.body);

    const invalid = await t.gw.infer({ provider: 'openai', model: 'gpt-4o-mini' }, auth);
    expect(invalid.status).toBe(422);
    expectValid('HTTPValidationError', invalid.body);

    const unauthorized = await t.gw.infer(chat);
    expect(unauthorized.status).toBe(401);
    expectValid('ErrorResponse', unauthorized.body);

    const accepted = await t.gw.infer(chat, { ...auth, prefer: 'respond-async' });
    expect(accepted.status).toBe(202);
    expectValid('JobReference', accepted.body);
    const view = await eventually(async () => {
      const res = await t.gw.request('GET', accepted.body.status_url, undefined, auth);
      return res.body.status === 'COMPLETED' ? res.body : undefined;
    }, 15_000, 'the job to complete');
    expectValid('JobView', view);
    expect(view.result).toBeDefined();
    const missing = await t.gw.request('GET', '/v1/inference/jobs/openai-nope', undefined, auth);
    expect(missing.status).toBe(404);
    expectValid('ErrorResponse', missing.body);

    const health = await t.gw.request('GET', '/health');
    expectValid('HealthStatus', health.body);
  });

  it('the schemas reject what the API rejects (they are not empty)', () => {
    const validate = ajv.getSchema('doc#/components/schemas/RawInferenceRequest')!;
    expect(validate({ provider: 'openai' })).toBe(false); // no inputs
    expect(validate({ inputs: {}, cache_delta: 2 })).toBe(false);
    expect(validate({ inputs: {}, provider: null, parameters: null })).toBe(true);
  });

  it('/docs serves Swagger UI without an API key', async () => {
    const page = await t.gw.request('GET', '/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.body).toContain('swagger-ui');
    const init = await t.gw.request('GET', '/docs/swagger-ui-init.js');
    expect(init.status).toBe(200);
    expect(init.body).toContain('execute_raw_inference_v1_inference_post');
    const bundle = await fetch(`${t.gw.url}/docs/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
  });
});
