/**
 * The error contract of the API (DESIGN.md, "Errors"). Pure types and one error class: no
 * framework imports, so the worker, the API and the tests share them.
 */
export enum ErrorType {
  BadRequest = 'BadRequestError',
  Unauthorized = 'UnauthorizedError',
  Forbidden = 'ForbiddenError',
  NotFound = 'NotFoundError',
  TooManyRequests = 'TooManyRequestsError',
  Internal = 'InternalServerError',
  ServiceUnavailable = 'InferenceServiceUnavailableError',
  Timeout = 'TimeoutError',
}

const STATUS_BY_TYPE: Record<ErrorType, number> = {
  [ErrorType.BadRequest]: 400,
  [ErrorType.Unauthorized]: 401,
  [ErrorType.Forbidden]: 403,
  [ErrorType.NotFound]: 404,
  [ErrorType.TooManyRequests]: 429,
  [ErrorType.Internal]: 500,
  [ErrorType.ServiceUnavailable]: 503,
  [ErrorType.Timeout]: 504,
};

export function statusOf(type: ErrorType): number {
  return STATUS_BY_TYPE[type];
}

/** The spec's ErrorDetail. */
export interface ErrorDetail {
  message: string;
  type: ErrorType;
  code?: string;
  details?: Record<string, unknown>;
}

/** The spec's ErrorResponse envelope, used for every error but 422. */
export interface ErrorResponse {
  success: false;
  status: number;
  error: ErrorDetail;
}

/** One entry of the spec's HTTPValidationError (FastAPI/pydantic style). */
export interface ValidationErrorItem {
  loc: Array<string | number>;
  msg: string;
  type: string;
}

export interface HTTPValidationError {
  detail: ValidationErrorItem[];
}

/** An error the API answers with its own status, type and stable code. */
export class GatewayError extends Error {
  readonly status: number;

  constructor(
    readonly type: ErrorType,
    message: string,
    readonly code?: string,
    readonly details?: Record<string, unknown>,
    /** Response headers that go with the error (Retry-After, X-RateLimit-*). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'GatewayError';
    this.status = statusOf(type);
  }

  toDetail(): ErrorDetail {
    const detail: ErrorDetail = { message: this.message, type: this.type };
    if (this.code) detail.code = this.code;
    if (this.details) detail.details = this.details;
    return detail;
  }

  toResponse(): ErrorResponse {
    return { success: false, status: this.status, error: this.toDetail() };
  }

  static fromDetail(detail: ErrorDetail): GatewayError {
    return new GatewayError(detail.type, detail.message, detail.code, detail.details);
  }
}

/** Raised for request-shape problems that belong in a 422 HTTPValidationError. */
export class RequestValidationError extends Error {
  constructor(readonly items: ValidationErrorItem[]) {
    super(items.map((i) => `${i.loc.join('.')}: ${i.msg}`).join('; '));
    this.name = 'RequestValidationError';
  }

  static single(loc: Array<string | number>, msg: string, type: string): RequestValidationError {
    return new RequestValidationError([{ loc, msg, type }]);
  }

  toBody(): HTTPValidationError {
    return { detail: this.items };
  }
}
