import type { FastifyInstance } from 'fastify';
import { RequestValidationError } from '@lib/contracts';

/**
 * Our own JSON body parser, so that a body that is not JSON, or not a JSON object, is a 422
 * in the spec's HTTPValidationError shape (Fastify's parser errors reach Nest as bare 400s).
 */
export function registerJsonBodyParser(fastify: FastifyInstance, bodyLimit: number): void {
  // JSON is the only body the API takes; any other type is answered 415 -> 422 by the filter.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (_req, body: string | Buffer, done) => {
    const text = body.toString();
    if (text.trim() === '') {
      done(RequestValidationError.single(['body'], 'Field required', 'missing'), undefined);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      done(RequestValidationError.single(['body'], `JSON decode error: ${(err as Error).message}`, 'json_invalid'), undefined);
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      done(RequestValidationError.single(['body'], 'Input should be a valid dictionary or object to extract fields from', 'model_attributes_type'), undefined);
      return;
    }
    done(null, parsed);
  });
}
