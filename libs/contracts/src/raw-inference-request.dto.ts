import {
  IsBoolean,
  IsDefined,
  IsNotEmpty,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Max,
  Min,
  ValidationError,
  ValidationOptions,
} from 'class-validator';
import { RawInferenceRequest } from './raw-inference';
import { RequestValidationError, ValidationErrorItem } from './errors';

/** class-validator options carrying the pydantic error `type` and message the spec's 422 uses. */
function pyd(type: string, message: string): ValidationOptions {
  return { message, context: { type } };
}

const STRING = pyd('string_type', 'Input should be a valid string');
const NOT_EMPTY = pyd('string_too_short', 'String should have at least 1 character');

/**
 * The body of `POST /v1/inference`, validated by class-validator. Nullable fields accept null
 * as the spec's `anyOf: [type, null]` does; unknown top-level fields are dropped.
 */
export class RawInferenceRequestDto implements RawInferenceRequest {
  @IsOptional()
  @IsString(STRING)
  @IsNotEmpty(NOT_EMPTY)
  provider?: string | null;

  @IsOptional()
  @IsString(STRING)
  @IsNotEmpty(NOT_EMPTY)
  model?: string | null;

  @IsOptional()
  @IsString(STRING)
  @IsNotEmpty(NOT_EMPTY)
  inference_name?: string | null;

  @IsOptional()
  @IsString(STRING)
  @IsNotEmpty(NOT_EMPTY)
  feature_uri?: string | null;

  @IsDefined(pyd('missing', 'Field required'))
  @IsObject(pyd('dict_type', 'Input should be a valid dictionary'))
  inputs!: Record<string, unknown>;

  @IsOptional()
  @IsObject(pyd('dict_type', 'Input should be a valid dictionary'))
  parameters?: Record<string, unknown> | null;

  @IsOptional()
  @IsBoolean(pyd('bool_type', 'Input should be a valid boolean'))
  enable_semantic_cache?: boolean;

  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false }, pyd('float_type', 'Input should be a valid number'))
  @Min(0, pyd('greater_than_equal', 'Input should be greater than or equal to 0'))
  @Max(1, pyd('less_than_equal', 'Input should be less than or equal to 1'))
  cache_delta?: number | null;
}

/** The order in which a property's failed constraints are reported: the most basic first. */
const CONSTRAINT_ORDER = ['isDefined', 'isString', 'isObject', 'isBoolean', 'isNumber', 'isNotEmpty', 'min', 'max'];

/** class-validator errors -> the spec's HTTPValidationError items, one per failing field. */
export function toValidationItems(errors: ValidationError[], parent: Array<string | number> = ['body']): ValidationErrorItem[] {
  const items: ValidationErrorItem[] = [];
  for (const error of errors) {
    const loc = [...parent, error.property];
    const failed = Object.keys(error.constraints ?? {});
    if (failed.length > 0) {
      failed.sort((a, b) => rank(a) - rank(b));
      const name = failed[0];
      const type = (error.contexts?.[name]?.type as string | undefined) ?? 'value_error';
      items.push({ loc, msg: error.constraints![name], type });
    }
    if (error.children?.length) items.push(...toValidationItems(error.children, loc));
  }
  return items;
}

function rank(constraint: string): number {
  const i = CONSTRAINT_ORDER.indexOf(constraint);
  return i === -1 ? CONSTRAINT_ORDER.length : i;
}

export type RequestMode =
  | { kind: 'provider'; provider: string; model: string }
  | { kind: 'inference_name'; inferenceName: string }
  | { kind: 'feature_uri'; featureUri: string };

/**
 * Exactly one of `provider`+`model`, `inference_name` or `feature_uri` (DESIGN.md); anything
 * else is a 422 that names what was given.
 */
export function requestModeOf(body: RawInferenceRequest): RequestMode {
  const hasProvider = body.provider != null;
  const hasModel = body.model != null;
  const given: string[] = [];
  if (hasProvider || hasModel) given.push('provider+model');
  if (body.inference_name != null) given.push('inference_name');
  if (body.feature_uri != null) given.push('feature_uri');

  if (given.length === 0) {
    throw RequestValidationError.single(
      ['body'],
      'Exactly one of provider+model, inference_name or feature_uri is required',
      'value_error',
    );
  }
  if (given.length > 1) {
    throw RequestValidationError.single(
      ['body'],
      `Exactly one of provider+model, inference_name or feature_uri is allowed; got ${given.join(' and ')}`,
      'value_error',
    );
  }
  if (hasProvider !== hasModel) {
    const missing = hasProvider ? 'model' : 'provider';
    const other = hasProvider ? 'provider' : 'model';
    throw RequestValidationError.single(['body', missing], `Field required when ${other} is set`, 'missing');
  }
  if (hasProvider) return { kind: 'provider', provider: body.provider!, model: body.model! };
  if (body.inference_name != null) return { kind: 'inference_name', inferenceName: body.inference_name };
  return { kind: 'feature_uri', featureUri: body.feature_uri! };
}
