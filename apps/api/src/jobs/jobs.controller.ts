import { Controller, Delete, Get, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { JobView } from '@lib/contracts';
import { JobsService } from './jobs.service';

@Controller('v1/inference/jobs')
export class JobsController {
  constructor(private readonly jobs: JobsService) {}

  @Get(':id')
  get(@Param('id') id: string): Promise<JobView> {
    return this.jobs.view(id);
  }

  /** 200 once the job is canceled (or had already ended); 202 while its worker is stopping it. */
  @Delete(':id')
  async cancel(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<JobView> {
    const { view, settled } = await this.jobs.cancel(id);
    void reply.status(settled ? 200 : 202);
    return view;
  }
}
