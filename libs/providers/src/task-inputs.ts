import { ErrorType, GatewayError, RequestValidationError, Task, ValidationErrorItem } from '@lib/contracts';

/** The kinds of value an input or parameter may hold. */
export type ValueKind = 'string' | 'string[]' | 'url' | 'base64' | 'number' | 'integer' | 'boolean' | 'object' | 'string|string[]';

/** What one task takes: the inputs it reads and the parameters it understands. */
export interface TaskSpec {
  task: Task;
  /** Each group: exactly one of these inputs must be given. */
  exactlyOne: string[][];
  /** Every input the task reads, with its kind. */
  inputs: Record<string, ValueKind>;
  /** Parameters the gateway checks; others pass through to the provider untouched. */
  parameters: Record<string, { kind: ValueKind; min?: number; max?: number }>;
}

type ParameterRules = TaskSpec['parameters'];

/**
 * Chat as every provider takes it: prompts (one user turn), an optional system prompt and
 * image; the parameters all chat providers share, plus the provider's own (`temperature`,
 * whose range differs, and extras such as `seed` or `top_k`).
 */
export function chatTaskSpec(providerParameters: ParameterRules): TaskSpec {
  return {
    task: Task.Chat,
    exactlyOne: [['prompts']],
    inputs: { prompts: 'string[]', system: 'string', image_url: 'url', image_base64: 'base64' },
    parameters: {
      max_tokens: { kind: 'integer', min: 1 },
      top_p: { kind: 'number', min: 0, max: 1 },
      stop: { kind: 'string|string[]' },
      schema: { kind: 'object' },
      ...providerParameters,
    },
  };
}

/**
 * Checks `inputs` and `parameters` against the task: an input the task does not read, or a
 * missing one, is a 400 that says which inputs the task takes; a wrongly typed value is a 422
 * pointing at it.
 */
export function checkTaskInputs(spec: TaskSpec, model: string, inputs: Record<string, unknown>, parameters: Record<string, unknown>): void {
  const accepted = Object.keys(spec.inputs);
  const takes = describe(spec);
  const unknown = Object.keys(inputs).filter((k) => !accepted.includes(k) && inputs[k] !== null && inputs[k] !== undefined);
  if (unknown.length > 0) {
    throw new GatewayError(
      ErrorType.BadRequest,
      `inputs.${unknown.join(', inputs.')} not used by ${spec.task} (model ${model}); ${spec.task} takes ${takes}`,
      'inputs_do_not_fit_task',
      { task: spec.task, accepted_inputs: accepted },
    );
  }
  for (const group of spec.exactlyOne) {
    const given = group.filter((k) => inputs[k] !== undefined && inputs[k] !== null);
    if (given.length !== 1) {
      const what = given.length === 0 ? `needs one of inputs.${group.join(' / inputs.')}` : `takes only one of inputs.${given.join(' / inputs.')}`;
      throw new GatewayError(ErrorType.BadRequest, `${spec.task} (model ${model}) ${what}; ${spec.task} takes ${takes}`, 'inputs_do_not_fit_task', {
        task: spec.task,
        accepted_inputs: accepted,
      });
    }
  }
  const items: ValidationErrorItem[] = [];
  for (const [name, kind] of Object.entries(spec.inputs)) {
    const value = inputs[name];
    if (value === undefined || value === null) continue;
    const problem = checkKind(value, kind);
    if (problem) items.push({ loc: ['body', 'inputs', name], msg: problem.msg, type: problem.type });
  }
  for (const [name, rule] of Object.entries(spec.parameters)) {
    const value = parameters[name];
    if (value === undefined || value === null) continue;
    const problem = checkKind(value, rule.kind) ?? checkRange(value as number, rule.min, rule.max);
    if (problem) items.push({ loc: ['body', 'parameters', name], msg: problem.msg, type: problem.type });
  }
  if (items.length > 0) throw new RequestValidationError(items);
}

function describe(spec: TaskSpec): string {
  const required = spec.exactlyOne.map((g) => g.map((k) => `inputs.${k}`).join(' or '));
  const optional = Object.keys(spec.inputs).filter((k) => !spec.exactlyOne.some((g) => g.includes(k)));
  return required.join(' and ') + (optional.length ? ` (optional: ${optional.map((k) => `inputs.${k}`).join(', ')})` : '');
}

interface Problem {
  msg: string;
  type: string;
}

function checkKind(value: unknown, kind: ValueKind): Problem | undefined {
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') return { msg: 'Input should be a valid string', type: 'string_type' };
      if (value.length === 0) return { msg: 'String should have at least 1 character', type: 'string_too_short' };
      return undefined;
    case 'string[]':
      return checkStringList(value);
    case 'string|string[]':
      return typeof value === 'string' ? undefined : checkStringList(value);
    case 'url':
      if (typeof value !== 'string') return { msg: 'Input should be a valid URL string', type: 'string_type' };
      return /^https?:\/\/[^\s]+$/i.test(value) ? undefined : { msg: 'URL should start with http:// or https://', type: 'url_scheme' };
    case 'base64':
      if (typeof value !== 'string') return { msg: 'Input should be a base64 string', type: 'string_type' };
      return value.length === 0 ? { msg: 'String should have at least 1 character', type: 'string_too_short' } : undefined;
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : { msg: 'Input should be a valid number', type: 'float_type' };
    case 'integer':
      return Number.isInteger(value) ? undefined : { msg: 'Input should be a valid integer', type: 'int_type' };
    case 'boolean':
      return typeof value === 'boolean' ? undefined : { msg: 'Input should be a valid boolean', type: 'bool_type' };
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value)
        ? undefined
        : { msg: 'Input should be a valid dictionary', type: 'dict_type' };
  }
}

function checkStringList(value: unknown): Problem | undefined {
  if (!Array.isArray(value)) return { msg: 'Input should be a valid list', type: 'list_type' };
  if (value.length === 0) return { msg: 'List should have at least 1 item', type: 'too_short' };
  const bad = value.findIndex((v) => typeof v !== 'string' || v.length === 0);
  return bad === -1 ? undefined : { msg: `Item ${bad} should be a non-empty string`, type: 'string_type' };
}

function checkRange(value: number, min?: number, max?: number): Problem | undefined {
  if (min !== undefined && value < min) return { msg: `Input should be greater than or equal to ${min}`, type: 'greater_than_equal' };
  if (max !== undefined && value > max) return { msg: `Input should be less than or equal to ${max}`, type: 'less_than_equal' };
  return undefined;
}
