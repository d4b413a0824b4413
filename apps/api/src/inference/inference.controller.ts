import { Body, Controller, Headers, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { JobReference, RawInferenceRequestDto, RawInferenceResponse } from '@lib/contracts';
import { clientScope } from '../common/client-identity';
import { ClientRateLimitGuard } from '../limits/client-rate-limit.guard';
import { InferenceService } from './inference.service';
import { parsePrefer } from './prefer-header';

@Controller('v1/inference')
export class InferenceController {
  constructor(private readonly inference: InferenceService) {}

  /**
   * 200 with the result when it arrives within the wait; 202 with the job reference when the
   * client asked `Prefer: respond-async` or the wait ran out.
   */
  @Post()
  @HttpCode(200)
  @UseGuards(ClientRateLimitGuard)
  async infer(
    @Body() body: RawInferenceRequestDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<RawInferenceResponse | JobReference> {
    const preference = parsePrefer(prefer);
    const receivedAt = (req as FastifyRequest & { receivedAt?: number }).receivedAt ?? Date.now();
    const outcome = await this.inference.submit(body, { receivedAt, ...preference, idempotencyKey, clientScope: clientScope(req), requestId: req.id });
    if (outcome.replayed) void reply.header('Idempotent-Replayed', 'true');
    if (outcome.kind === 'done') return outcome.response;
    void reply.status(202).header('Location', outcome.reference.status_url);
    if (preference.respondAsync) void reply.header('Preference-Applied', 'respond-async');
    return outcome.reference;
  }
}
