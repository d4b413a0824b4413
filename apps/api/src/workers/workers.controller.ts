import { Controller, Get, UseGuards } from '@nestjs/common';
import { WorkerRecord } from '@lib/metrics';
import { AdminKeyGuard } from '../common/admin-key.guard';
import { Public } from '../common/public.decorator';
import { WorkersService } from './workers.service';

@Controller('v1/workers')
export class WorkersController {
  constructor(private readonly workers: WorkersService) {}

  /** Live workers from their heartbeats. @Public: AdminKeyGuard asks for an ADMIN_API_KEYS key instead. */
  @Public()
  @UseGuards(AdminKeyGuard)
  @Get()
  async list(): Promise<{ workers: WorkerRecord[] }> {
    return { workers: await this.workers.list() };
  }
}
