import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ErrorResponse, ErrorType, GatewayError, HTTPValidationError, RequestValidationError } from '@lib/contracts';

const TYPE_BY_STATUS: Record<number, ErrorType> = {
  400: ErrorType.BadRequest,
  401: ErrorType.Unauthorized,
  403: ErrorType.Forbidden,
  404: ErrorType.NotFound,
  429: ErrorType.TooManyRequests,
  500: ErrorType.Internal,
  503: ErrorType.ServiceUnavailable,
  504: ErrorType.Timeout,
};

/**
 * Every error leaves the API in one of the spec's two shapes: HTTPValidationError for 422,
 * ErrorResponse for everything else. Unknown errors become a 500 that shows no internals.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpError');

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const { status, body, headers } = this.toHttp(exception);
    for (const [name, value] of Object.entries(headers ?? {})) reply.header(name, value);
    void reply.status(status).send(body);
  }

  toHttp(exception: unknown): { status: number; body: ErrorResponse | HTTPValidationError; headers?: Record<string, string> } {
    if (exception instanceof RequestValidationError) return { status: 422, body: exception.toBody() };
    if (exception instanceof GatewayError) {
      const headers = exception.status === 401 ? { 'WWW-Authenticate': 'Bearer', ...exception.headers } : exception.headers;
      return { status: exception.status, body: exception.toResponse(), headers };
    }
    if (exception instanceof HttpException) return fromHttpException(exception);
    this.logger.error(exception instanceof Error ? `${exception.name}: ${exception.message}` : String(exception));
    return { status: 500, body: new GatewayError(ErrorType.Internal, 'Internal server error', 'internal_error').toResponse() };
  }
}

/**
 * Nest's own HTTP exceptions, and Fastify's body errors, which Nest hands over as plain
 * HttpExceptions with Fastify's status (the JSON parser itself is ours: json-body.parser.ts).
 */
function fromHttpException(exception: HttpException): { status: number; body: ErrorResponse | HTTPValidationError } {
  const status = exception.getStatus();
  if (status === 413) {
    return {
      status: 400,
      body: new GatewayError(ErrorType.BadRequest, 'Request body is larger than API_MAX_BODY_BYTES allows; send large media by URL', 'request_too_large').toResponse(),
    };
  }
  if (status === 415) return validation(['body'], 'Request body must be JSON (Content-Type: application/json)', 'model_attributes_type');
  const type = TYPE_BY_STATUS[status];
  if (type) return { status, body: new GatewayError(type, status === 404 ? 'Not found: no such route' : exception.message).toResponse() };
  const fallback = status >= 500 ? 500 : 400;
  return { status: fallback, body: new GatewayError(TYPE_BY_STATUS[fallback], exception.message).toResponse() };
}

function validation(loc: string[], msg: string, type: string): { status: number; body: HTTPValidationError } {
  return { status: 422, body: { detail: [{ loc, msg, type }] } };
}
