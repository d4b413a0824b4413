import { DelayedError, Job } from 'bullmq';
import { InferenceJobData, NormalizedRequest, RawInferenceResponse, TokensUsed } from '@lib/contracts';
import { RateGate } from './rate-gate';

/** Calls the provider once for `texts` (already admitted by the rate gate); vectors in order. */
export type EmbedCall = (request: NormalizedRequest, texts: string[], signal: AbortSignal) => Promise<{ vectors: Buffer[]; usage?: TokensUsed }>;

export interface CoalescerLimits {
  /** How long the first job of a group waits for others (ms); 0 = off. */
  windowMs: number;
  /** A group is sent at once when it reaches this many inputs... */
  maxInputs: number;
  /** ...or this many estimated tokens. */
  maxTokens: number;
}

interface Member {
  job: Job<InferenceJobData, RawInferenceResponse>;
  token: string | undefined;
  text: string;
  tokens: number;
  settled: boolean;
  resolve(value: { vector: Buffer; usage?: TokensUsed }): void;
  reject(err: unknown): void;
}

interface Group {
  key: string;
  request: NormalizedRequest;
  members: Member[];
  tokens: number;
  timer?: NodeJS.Timeout;
}

/**
 * Merges concurrent single-text embedding jobs of one worker process that share provider,
 * model and parameters into one provider call: the first job of a group waits up to
 * COALESCE_WINDOW_MS (or until the group is full), the group passes the shared rate limiter
 * once with its combined tokens (RateGate.enterGroup), and each job gets its own vector back.
 * With a requests-per-minute limit, each call then carries many jobs.
 *
 * A group the limiter defers is not held: every member goes to the delayed set with the
 * group's slot (DelayedError), and groups form again when they wake, among jobs holding a
 * slot (admitted without paying again; the send-time guard holds the cap should one
 * reservation's jobs wake on two workers and make two calls). A member canceled while
 * its group is in flight is answered at once; the call goes on for the others.
 */
export class EmbeddingCoalescer {
  private readonly groups = new Map<string, Group>();

  constructor(
    private readonly limits: CoalescerLimits,
    private readonly gate: RateGate,
    private readonly call: EmbedCall,
  ) {}

  get enabled(): boolean {
    return this.limits.windowMs > 0;
  }

  /** Jobs waiting in a group that has not been sent yet. */
  get pending(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.members.length;
    return n;
  }

  embed(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined, signal: AbortSignal, text: string, tokens: number): Promise<{ vector: Buffer; usage?: TokensUsed }> {
    const { request } = job.data;
    // Jobs coming back with a reserved slot group apart from new ones: mixed, the group would
    // have to reserve again and the members' slots would go to waste (and, while new jobs keep
    // arriving, again at every wake-up).
    const prepaid = job.data.limiter?.prepaidAttempt === job.attemptsMade;
    const key = JSON.stringify([request.provider, request.model, canonical(request.parameters), prepaid]);
    let group = this.groups.get(key);
    if (group && (group.members.length + 1 > this.limits.maxInputs || (group.tokens + tokens > this.limits.maxTokens && group.members.length > 0))) {
      this.flush(group);
      group = undefined;
    }
    if (!group) {
      const created: Group = { key, request, members: [], tokens: 0 };
      created.timer = setTimeout(() => this.flush(created), this.limits.windowMs);
      this.groups.set(key, created);
      group = created;
    }
    const current = group;
    return new Promise((resolve, reject) => {
      const member: Member = { job, token, text, tokens, settled: false, resolve, reject };
      member.resolve = (v) => settle(member, () => resolve(v));
      member.reject = (e) => settle(member, () => reject(e));
      current.members.push(member);
      current.tokens += tokens;
      signal.addEventListener('abort', () => member.reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason))), { once: true });
      if (current.members.length >= this.limits.maxInputs || current.tokens >= this.limits.maxTokens) this.flush(current);
    });
  }

  private flush(group: Group): void {
    if (this.groups.get(group.key) !== group) return;
    this.groups.delete(group.key);
    if (group.timer) clearTimeout(group.timer);
    void this.send(group);
  }

  private async send(group: Group): Promise<void> {
    const members = group.members.filter((m) => !m.settled);
    if (members.length === 0) return;
    const tokens = members.reduce((n, m) => n + m.tokens, 0);
    const controller = new AbortController();
    try {
      const ticket = await this.gate.enterGroup(members, tokens);
      if (!ticket) {
        for (const m of members) m.reject(new DelayedError());
        return;
      }
      let usage: TokensUsed | undefined;
      try {
        const texts = [...new Set(members.map((m) => m.text))];
        const out = await this.call(group.request, texts, controller.signal);
        usage = out.usage;
        const byText = new Map(texts.map((t, i) => [t, out.vectors[i]]));
        for (const m of members) m.resolve({ vector: byText.get(m.text)!, usage: share(usage, m.tokens, tokens) });
      } finally {
        void this.gate.leave(ticket, usage);
      }
    } catch (err) {
      for (const m of members) m.reject(err);
    }
  }
}

function settle(member: Member, fn: () => void): void {
  if (member.settled) return;
  member.settled = true;
  fn();
}

/** A member's part of the call's usage, in proportion to its estimated tokens. */
function share(usage: TokensUsed | undefined, part: number, whole: number): TokensUsed | undefined {
  if (!usage) return undefined;
  const f = whole > 0 ? part / whole : 0;
  return { prompt: Math.round(usage.prompt * f), completion: Math.round(usage.completion * f), total: Math.round(usage.total * f) };
}

/** Parameters with sorted keys, so that equal parameters make one group. */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, canonical(v)]));
  return value;
}
