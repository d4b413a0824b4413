import type { FastifyInstance } from 'fastify';
import { RequestValidationError } from '@lib/contracts';

/** Content types of a batch upload given line by line. */
export const NDJSON_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/json-lines'];

/** The one route that reads a body as a stream of lines. */
export const BATCH_UPLOAD_ROUTE = '/v1/inference/batches';

/**
 * NDJSON bodies are not parsed here: the request stream itself becomes the body, and the batch
 * upload reads it line by line, pausing while it writes, so a million-line upload never sits in
 * memory. No body limit applies (BATCH_MAX_LINES bounds a batch). Any other route answers an
 * NDJSON body as it answers every non-JSON body: a 422.
 */
export function registerNdjsonBodyParser(fastify: FastifyInstance): void {
  fastify.addContentTypeParser(NDJSON_TYPES, (req, payload, done) => {
    if (req.routeOptions.url === BATCH_UPLOAD_ROUTE && req.method === 'POST') {
      done(null, payload);
      return;
    }
    done(RequestValidationError.single(['body'], 'Request body must be JSON (Content-Type: application/json)', 'model_attributes_type'), undefined);
  });
}
