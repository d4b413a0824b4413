import { Injectable } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import {
  BatchPendingLine,
  batchJobId,
  ErrorDetail,
  ErrorType,
  GatewayError,
  RawInferenceRequestDto,
  RequestValidationError,
  toValidationItems,
} from '@lib/contracts';
import { RequestNormalizer } from '../inference/request-normalizer';

/** Longest custom_id kept (characters). */
const CUSTOM_ID_MAX = 512;

export type CheckedLine = { ok: true; line: BatchPendingLine } | { ok: false; customId: string | null; error: ErrorDetail };

/**
 * One batch line judged exactly as `POST /v1/inference` judges a body (the DTO's rules, then
 * RequestNormalizer), so a line that would be a 422 or a 400 there is that line's error here;
 * the batch goes on. `custom_id` is the only extra field.
 */
@Injectable()
export class BatchLineValidator {
  constructor(private readonly normalizer: RequestNormalizer) {}

  async check(value: unknown, index: number, batchId: string, requestId?: string): Promise<CheckedLine> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return invalid(null, lineError('Each line must be a JSON object: {"custom_id": "...", "provider": ..., "inputs": {...}}', 'invalid_request'));
    }
    const { custom_id: rawId, ...body } = value as Record<string, unknown>;
    const customId = typeof rawId === 'string' && rawId.length > 0 && rawId.length <= CUSTOM_ID_MAX ? rawId : null;
    if (customId === null) {
      return invalid(null, lineError(`custom_id must be a string of 1 to ${CUSTOM_ID_MAX} characters`, 'invalid_custom_id'));
    }
    try {
      const dto = plainToInstance(RawInferenceRequestDto, body);
      const errors = validateSync(dto, { whitelist: true, validationError: { target: false, value: false } });
      if (errors.length > 0) throw new RequestValidationError(toValidationItems(errors));
      const checked = this.normalizer.check(dto);
      const queue = checked.entry.queue;
      const { request } = await this.normalizer.normalize(dto, checked, batchJobId(queue, batchId, index));
      const line: BatchPendingLine = { i: index, c: customId, q: queue, r: request, x: requestId };
      if (dto.enable_semantic_cache === true) line.s = { delta: dto.cache_delta ?? null };
      return { ok: true, line };
    } catch (err) {
      if (err instanceof RequestValidationError) {
        return invalid(customId, { ...lineError(`Invalid request: ${err.message}`, 'invalid_request'), details: { detail: err.items } });
      }
      if (err instanceof GatewayError) return invalid(customId, err.toDetail());
      throw err;
    }
  }
}

function lineError(message: string, code: string): ErrorDetail {
  return { type: ErrorType.BadRequest, message, code };
}

function invalid(customId: string | null, error: ErrorDetail): CheckedLine {
  return { ok: false, customId, error };
}
