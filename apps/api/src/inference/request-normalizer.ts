import { Inject, Injectable } from '@nestjs/common';
import {
  BlobRef,
  ErrorType,
  GatewayError,
  NormalizedRequest,
  Provider,
  RawInferenceRequest,
  RequestValidationError,
  requestModeOf,
} from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { checkTaskInputs, providerFor, ProviderEntry, TaskSpec } from '@lib/providers';
import { decodeBase64Media, MediaError } from '@lib/media';
import { BlobStore } from '@lib/queue';

/** Decoded inline media at or under this size stays in the job; larger goes to a blob key. */
const INLINE_MEDIA_MAX_BYTES = 32 * 1024;

export interface Checked {
  entry: ProviderEntry;
  spec: TaskSpec;
  model: string;
}

export interface Normalized {
  request: NormalizedRequest;
  blobs: BlobRef[];
}

/**
 * From a validated body to the job's request: the request mode, the provider, the task and
 * its inputs are checked here, before anything is enqueued, so a bad request costs no queue
 * slot and gets its error at once.
 */
@Injectable()
export class RequestNormalizer {
  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly blobs: BlobStore,
  ) {}

  /** Everything that can be judged without I/O. */
  check(body: RawInferenceRequest): Checked {
    const mode = requestModeOf(body);
    if (mode.kind !== 'provider') {
      const given = mode.kind === 'inference_name' ? { inference_name: mode.inferenceName } : { feature_uri: mode.featureUri };
      throw new GatewayError(
        ErrorType.NotFound,
        `No inference plugin matches ${mode.kind} "${Object.values(given)[0]}": this gateway has no plugins loaded yet; use provider + model`,
        'plugin_not_found',
        { ...given, known_plugins: [] },
      );
    }
    const entry = providerFor(mode.provider, this.config);
    const spec = entry.taskSpec(mode.model);
    checkTaskInputs(spec, mode.model, body.inputs, body.parameters ?? {});
    return { entry, spec, model: mode.model };
  }

  /** Decodes base64 media (a 422 when it is not base64) and moves large pieces to blob keys. */
  async normalize(body: RawInferenceRequest, checked: Checked, jobId: string): Promise<Normalized> {
    const { entry, spec, model } = checked;
    const inputs: Record<string, unknown> = {};
    const blobs: BlobRef[] = [];
    for (const [name, value] of Object.entries(body.inputs)) {
      if (value === null || value === undefined) continue;
      if (spec.inputs[name] !== 'base64') {
        inputs[name] = value;
        continue;
      }
      const bytes = this.decode(name, value as string);
      if (bytes.length <= INLINE_MEDIA_MAX_BYTES) {
        inputs[name] = bytes.toString('base64');
      } else {
        const ref = await this.blobs.put(jobId, name, bytes);
        blobs.push(ref);
        inputs[name] = ref;
      }
    }
    const request: NormalizedRequest = {
      provider: entry.provider as Provider,
      model,
      task: spec.task,
      inputs,
      parameters: body.parameters ?? {},
    };
    return { request, blobs };
  }

  private decode(name: string, value: string): Buffer {
    try {
      return decodeBase64Media(value, this.config.mediaMaxBytes, `inputs.${name}`);
    } catch (err) {
      if (err instanceof MediaError && err.code === 'invalid_base64') {
        throw RequestValidationError.single(['body', 'inputs', name], err.message, 'base64_decode');
      }
      if (err instanceof MediaError) throw new GatewayError(ErrorType.BadRequest, err.message, err.code, err.details);
      throw err;
    }
  }
}
