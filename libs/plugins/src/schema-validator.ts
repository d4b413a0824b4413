import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import type { ValidationErrorItem } from '@lib/contracts';

/**
 * `format` is an annotation, as JSON Schema 2020-12 has it by default: no format validators are
 * bundled (write a `pattern` to enforce one). `verbose` keeps each error's schema, for messages.
 */
const OPTIONS = { allErrors: true, strict: false, useDefaults: true, verbose: true, validateFormats: false } as const;

/**
 * JSON Schema compilation for plugin manifests: draft-07 by default, 2020-12 when the schema
 * says `$schema: .../2020-12/schema`. Each plugin gets instances of its own, so two plugins may
 * use the same `$id`. Defaults written in a schema are filled into the validated copy.
 */
export class SchemaValidator {
  private readonly draft7 = new Ajv(OPTIONS);
  private draft2020?: Ajv2020;

  /** Throws an Error whose message says what is wrong with the schema. */
  compile(schema: Record<string, unknown>): ValidateFunction {
    const $schema = typeof schema.$schema === 'string' ? schema.$schema : '';
    if ($schema.includes('2020-12')) {
      this.draft2020 ??= new Ajv2020(OPTIONS);
      return this.draft2020.compile(schema);
    }
    return this.draft7.compile(schema);
  }
}

/** pydantic's error types for the JSON Schema keywords, so a plugin's 422 reads like any other. */
const TYPE_BY_KEYWORD: Record<string, string> = {
  minLength: 'string_too_short',
  maxLength: 'string_too_long',
  pattern: 'string_pattern_mismatch',
  minimum: 'greater_than_equal',
  maximum: 'less_than_equal',
  exclusiveMinimum: 'greater_than',
  exclusiveMaximum: 'less_than',
  minItems: 'too_short',
  maxItems: 'too_long',
  enum: 'enum',
  const: 'literal_error',
  additionalProperties: 'extra_forbidden',
  required: 'missing',
  multipleOf: 'multiple_of',
};

const plural = (n: unknown, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** pydantic's wording, which the rest of the API's 422s use. */
const PYDANTIC_MESSAGES: Record<string, (params: Record<string, unknown>) => string> = {
  minimum: (p) => `Input should be greater than or equal to ${p.limit}`,
  maximum: (p) => `Input should be less than or equal to ${p.limit}`,
  exclusiveMinimum: (p) => `Input should be greater than ${p.limit}`,
  exclusiveMaximum: (p) => `Input should be less than ${p.limit}`,
  minLength: (p) => `String should have at least ${plural(p.limit, 'character')}`,
  maxLength: (p) => `String should have at most ${plural(p.limit, 'character')}`,
  minItems: (p) => `List should have at least ${plural(p.limit, 'item')}`,
  maxItems: (p) => `List should have at most ${plural(p.limit, 'item')}`,
  pattern: (p) => `String should match pattern '${p.pattern}'`,
  multipleOf: (p) => `Input should be a multiple of ${p.multipleOf}`,
};

const TYPE_BY_JSON_TYPE: Record<string, string> = {
  string: 'string_type',
  integer: 'int_type',
  number: 'float_type',
  boolean: 'bool_type',
  array: 'list_type',
  object: 'dict_type',
  null: 'none_required',
};

/**
 * ajv errors -> HTTPValidationError items under `root` (e.g. body.inputs). A `oneOf` whose
 * branches only differ in what they require ("exactly one of text, texts") becomes one item
 * saying so instead of one per branch (the validators are compiled with `verbose` for this).
 */
export function schemaErrorsToItems(errors: ErrorObject[] | null | undefined, root: Array<string | number>): ValidationErrorItem[] {
  const all = errors ?? [];
  const oneOfs = all.filter((e) => e.keyword === 'oneOf');
  const items: ValidationErrorItem[] = [];
  for (const error of all) {
    // Errors from inside a failed oneOf's branches are summarised by the oneOf item.
    if (oneOfs.some((o) => o !== error && error.schemaPath.startsWith(`${o.schemaPath}/`))) continue;
    const loc = [...root, ...pointerSegments(error.instancePath)];
    items.push(itemOf(error, loc));
  }
  return dedupe(items);
}

function itemOf(error: ErrorObject, loc: Array<string | number>): ValidationErrorItem {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { loc: [...loc, String(params.missingProperty)], msg: 'Field required', type: 'missing' };
    case 'additionalProperties':
      return { loc: [...loc, String(params.additionalProperty)], msg: 'Extra inputs are not permitted', type: 'extra_forbidden' };
    case 'type': {
      const wanted = String(params.type).split(',')[0];
      return { loc, msg: `Input should be a valid ${describeType(wanted)}`, type: TYPE_BY_JSON_TYPE[wanted] ?? 'type_error' };
    }
    case 'enum':
      return { loc, msg: `Input should be ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`, type: 'enum' };
    case 'oneOf':
      return { loc, msg: oneOfMessage(error), type: 'value_error' };
    case 'const':
      return { loc, msg: `Input should be ${JSON.stringify(params.allowedValue)}`, type: 'literal_error' };
    default:
      return { loc, msg: PYDANTIC_MESSAGES[error.keyword]?.(params) ?? capitalise(error.message ?? 'Invalid value'), type: TYPE_BY_KEYWORD[error.keyword] ?? 'value_error' };
  }
}

/** "Exactly one of inputs.text, inputs.texts is required" when every branch only requires fields. */
function oneOfMessage(error: ErrorObject): string {
  const branches = Array.isArray(error.schema) ? (error.schema as Array<Record<string, unknown>>) : [];
  const names = branches.map((b) => (Array.isArray(b.required) && Object.keys(b).length === 1 ? (b.required as string[]).join(' + ') : undefined));
  const passing = (error.params as { passingSchemas?: number[] | null }).passingSchemas;
  if (names.length > 0 && names.every(Boolean)) {
    return passing ? `Give only one of ${names.join(', ')}` : `Exactly one of ${names.join(', ')} is required`;
  }
  return passing ? 'Input matches more than one allowed shape; it should match exactly one' : 'Input should match exactly one allowed shape';
}

function describeType(type: string): string {
  return { object: 'dictionary', array: 'list', number: 'number', integer: 'integer', string: 'string', boolean: 'boolean' }[type] ?? type;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** `/texts/2` -> ['texts', 2]. */
function pointerSegments(pointer: string): Array<string | number> {
  if (!pointer) return [];
  return pointer
    .split('/')
    .slice(1)
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function dedupe(items: ValidationErrorItem[]): ValidationErrorItem[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const key = JSON.stringify(i);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
