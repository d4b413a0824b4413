import { ErrorType, GatewayError } from '@lib/contracts';

/** `data.parsed` from a model's JSON answer, or a 500 that says why there is none. */
export function parseStructuredOutput(provider: string, text: string, finishReason: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const why = finishReason === 'length' || finishReason === 'max_tokens' ? 'it was cut off by max_tokens' : 'it is not valid JSON';
    throw new GatewayError(ErrorType.Internal, `${provider} answered a structured-output request but ${why}`, 'structured_output_invalid', {
      finish_reason: finishReason,
    });
  }
}
