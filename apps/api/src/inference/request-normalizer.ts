import { Inject, Injectable } from '@nestjs/common';
import {
  BlobRef,
  ErrorType,
  GatewayError,
  NormalizedRequest,
  PLUGIN_PROVIDER,
  PluginTarget,
  Provider,
  QueueName,
  RawInferenceRequest,
  RequestMode,
  RequestProvider,
  RequestValidationError,
  requestModeOf,
  Task,
} from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { checkTaskInputs, providerFor, TaskSpec } from '@lib/providers';
import { PluginCatalog, pluginTargetOf } from '@lib/plugins';
import { decodeBase64Media, MediaError } from '@lib/media';
import { BlobStore } from '@lib/queue';

/** Decoded inline media at or under this size stays in the job; larger goes to a blob key. */
const INLINE_MEDIA_MAX_BYTES = 32 * 1024;

export interface Checked {
  /** Who serves the request, on which queue: a provider's catalog entry, or the plugins queue. */
  entry: { provider: RequestProvider; queue: QueueName };
  spec: TaskSpec;
  model: string;
  /** Plugin mode: the plugin, and the inputs and parameters its schemas accepted (defaults filled in). */
  plugin?: { target: PluginTarget; inputs: Record<string, unknown>; parameters: Record<string, unknown> };
}

/** Plugins take whatever their own JSON Schemas allow: PluginCatalog.validate judges, not a TaskSpec. */
const PLUGIN_SPEC: TaskSpec = { task: Task.Plugin, exactlyOne: [], inputs: {}, parameters: {} };
const PLUGIN_ENTRY: Checked['entry'] = { provider: PLUGIN_PROVIDER, queue: QueueName.Plugins };

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
    private readonly plugins: PluginCatalog,
  ) {}

  /** Everything that can be judged without I/O. */
  check(body: RawInferenceRequest): Checked {
    const mode = requestModeOf(body);
    if (mode.kind !== 'provider') return this.checkPlugin(mode, body);
    const entry = providerFor(mode.provider, this.config);
    const spec = entry.taskSpec(mode.model);
    checkTaskInputs(spec, mode.model, body.inputs, body.parameters ?? {});
    return { entry, spec, model: mode.model };
  }

  /** inference_name / feature_uri: 422 malformed URI, 404 unknown, 503 not configured, 422 inputs against the plugin's schemas. */
  private checkPlugin(mode: Exclude<RequestMode, { kind: 'provider' }>, body: RawInferenceRequest): Checked {
    const resolved = this.plugins.resolve(mode);
    const unavailable = this.plugins.unavailable(resolved.plugin);
    if (unavailable) throw unavailable;
    const { inputs, parameters } = this.plugins.validate(resolved.plugin, body.inputs, body.parameters);
    return { entry: PLUGIN_ENTRY, spec: PLUGIN_SPEC, model: resolved.plugin.inferenceName, plugin: { target: pluginTargetOf(resolved), inputs, parameters } };
  }

  /** Decodes base64 media (a 422 when it is not base64) and moves large pieces to blob keys. */
  async normalize(body: RawInferenceRequest, checked: Checked, jobId: string): Promise<Normalized> {
    const { entry, spec, model } = checked;
    if (checked.plugin) {
      // Plugin inputs travel as the client sent them (media by URL or base64, read by the worker on the plugin's request).
      const { target, inputs, parameters } = checked.plugin;
      return { request: { provider: PLUGIN_PROVIDER, model, task: Task.Plugin, inputs, parameters, plugin: target }, blobs: [] };
    }
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
