import { Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { BatchView, RequestValidationError } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { ClientRateLimitGuard } from '../limits/client-rate-limit.guard';
import { ndjsonLines } from './batch-line-reader';
import { BatchesService } from './batches.service';

@Controller('v1/inference/batches')
export class BatchesController {
  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly batches: BatchesService,
  ) {}

  /**
   * JSON `{"requests": [...], "callback_url"?, "metadata"?}`, or NDJSON (one request line each,
   * read as it arrives) with `callback_url` and `metadata` (JSON) in the query string.
   * 202 with the batch once every line is read and validated.
   */
  @Post()
  @HttpCode(202)
  @UseGuards(ClientRateLimitGuard)
  async submit(
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Query('callback_url') callbackUrl?: string,
    @Query('metadata') metadata?: string,
  ): Promise<BatchView> {
    const body = req.body as unknown;
    const view = isStream(body)
      ? await this.batches.submit(ndjsonLines(body, this.config.maxBodyBytes), { callbackUrl, metadata: queryJson(metadata), requestId: req.id })
      : await this.batches.submit(requestsOf(body), { ...jsonOptions(body), requestId: req.id });
    void reply.header('Location', `/v1/inference/batches/${view.batch_id}`);
    return view;
  }

  @Get(':id')
  get(@Param('id') id: string): Promise<BatchView> {
    return this.batches.view(id);
  }

  /** NDJSON, one line per request in input order; while the batch runs, the lines finished so far. */
  @Get(':id/results')
  async results(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<Readable> {
    const lines = await this.batches.results(id);
    void reply.type('application/x-ndjson');
    return Readable.from(lines);
  }

  /** 200 once the batch is CANCELED (or had already ended); 202 while running lines finish. */
  @Delete(':id')
  async cancel(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<BatchView> {
    const { view, settled } = await this.batches.cancel(id);
    void reply.status(settled ? 200 : 202);
    return view;
  }
}

function isStream(body: unknown): body is Readable {
  return typeof (body as Readable | undefined)?.pipe === 'function';
}

function requestsOf(body: unknown): unknown[] {
  const requests = (body as { requests?: unknown } | undefined)?.requests;
  if (requests === undefined) throw RequestValidationError.single(['body', 'requests'], 'Field required', 'missing');
  if (!Array.isArray(requests)) throw RequestValidationError.single(['body', 'requests'], 'Input should be a valid list', 'list_type');
  return requests;
}

function jsonOptions(body: unknown): { callbackUrl?: unknown; metadata?: unknown } {
  const { callback_url, metadata } = body as { callback_url?: unknown; metadata?: unknown };
  return { callbackUrl: callback_url, metadata };
}

function queryJson(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw RequestValidationError.single(['query', 'metadata'], 'metadata must be a JSON object', 'json_invalid');
  }
}
