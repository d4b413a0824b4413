import { requestModeOf } from './raw-inference-request.dto';
import { RequestValidationError } from './errors';

describe('requestModeOf', () => {
  it('accepts exactly one mode', () => {
    expect(requestModeOf({ provider: 'openai', model: 'm', inputs: {} })).toEqual({ kind: 'provider', provider: 'openai', model: 'm' });
    expect(requestModeOf({ inference_name: 'x_1_0_0', inputs: {} })).toEqual({ kind: 'inference_name', inferenceName: 'x_1_0_0' });
    expect(requestModeOf({ feature_uri: 'mixpeek://a@v1/b', provider: null, model: null, inputs: {} })).toEqual({ kind: 'feature_uri', featureUri: 'mixpeek://a@v1/b' });
  });

  it.each([
    [{ inputs: {} }, ['body'], /Exactly one of/],
    [{ inference_name: 'a', feature_uri: 'b', inputs: {} }, ['body'], /got inference_name and feature_uri/],
    [{ provider: 'openai', inputs: {} }, ['body', 'model'], /required when provider is set/],
  ])('refuses %j', (body, loc, msg) => {
    let error: RequestValidationError | undefined;
    try {
      requestModeOf(body);
    } catch (err) {
      error = err as RequestValidationError;
    }
    expect(error).toBeInstanceOf(RequestValidationError);
    expect(error!.items[0].loc).toEqual(loc);
    expect(error!.items[0].msg).toMatch(msg);
  });
});
