import { Injectable } from '@nestjs/common';

/** How long a cancel request heard on the channel is remembered for jobs not yet started here. */
const REMEMBER_MS = 10 * 60_000;
const MAX_REMEMBERED = 100_000;

/**
 * Cancel requests this worker heard, so that a job canceled a moment before this worker took
 * it is dropped without a Redis read on every job's start. (A job re-run after a retry or a
 * stall, which may have been canceled before this worker subscribed, still checks Redis.)
 */
@Injectable()
export class CancelRegistry {
  private readonly heard = new Map<string, number>();

  remember(jobId: string, now = Date.now()): void {
    if (this.heard.size >= MAX_REMEMBERED) this.prune(now);
    this.heard.set(jobId, now + REMEMBER_MS);
  }

  has(jobId: string, now = Date.now()): boolean {
    const until = this.heard.get(jobId);
    return until !== undefined && until > now;
  }

  private prune(now: number): void {
    for (const [id, until] of this.heard) if (until <= now) this.heard.delete(id);
    // Still full of live entries: drop the oldest half (Map keeps insertion order).
    let excess = this.heard.size - MAX_REMEMBERED / 2;
    for (const id of this.heard.keys()) {
      if (excess-- <= 0) break;
      this.heard.delete(id);
    }
  }
}
