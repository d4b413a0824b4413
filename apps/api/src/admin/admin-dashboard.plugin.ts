import { INestApplication, Logger } from '@nestjs/common';
import { getQueueToken } from '@nestjs/bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter as BullBoardFastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ALL_QUEUES, ErrorType, GatewayError } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { loginPage } from './admin-login.page';
import { ADMIN_COOKIE, AdminSession } from './admin-session';

export const ADMIN_PREFIX = '/admin';
export const DASHBOARD_PATH = '/admin/queues';
const LOGIN_PATH = '/admin/login';

/** Largest login form accepted: a key and a path fit in far less. */
const LOGIN_BODY_LIMIT_BYTES = 4096;

/**
 * The queue dashboard (bull-board) at /admin/queues, behind ADMIN_API_KEYS. Its routes are
 * Fastify routes, not Nest controllers, so the global ApiKeyGuard never sees them; a hook on
 * the /admin scope guards them instead. It lets in a request with the session cookie of a
 * login at /admin/login, or with `Authorization: Bearer <admin key>` (scripts). The board is
 * read-only: jobs are canceled through DELETE /v1/inference/jobs/{id}, not from the board.
 * Without ADMIN_API_KEYS every /admin path answers 404 admin_disabled.
 */
export function setupAdminDashboard(app: INestApplication, config: GatewayConfig): void {
  const fastify = app.getHttpAdapter().getInstance() as FastifyInstance;
  if (config.adminApiKeys.length === 0) {
    void fastify.register(disabledAdmin, { prefix: ADMIN_PREFIX });
    return;
  }
  // The producer queues of this API (the objects QueueRegistry holds), read by their tokens:
  // the registry fills itself at module init, after Fastify has loaded its plugins.
  const queues = ALL_QUEUES.map((name) => app.get<Queue>(getQueueToken(name), { strict: false }));
  const session = new AdminSession(config.adminApiKeys);
  void fastify.register((admin, _opts, done) => adminScope(admin, session, queues, done), { prefix: ADMIN_PREFIX });
  new Logger('Admin').log(`queue dashboard at ${DASHBOARD_PATH} (${config.adminApiKeys.length} admin key(s))`);
}

function disabledAdmin(admin: FastifyInstance, _opts: unknown, done: () => void): void {
  const answer = (_req: FastifyRequest, reply: FastifyReply): FastifyReply =>
    reply
      .code(404)
      .send(new GatewayError(ErrorType.NotFound, 'The queue dashboard is off: set ADMIN_API_KEYS to turn it on', 'admin_disabled').toResponse());
  admin.all('/', answer);
  admin.all('/*', answer);
  done();
}

function adminScope(admin: FastifyInstance, session: AdminSession, queues: Queue[], done: () => void): void {
  admin.addHook('onRequest', (_req, reply, next) => {
    void reply.header('X-Frame-Options', 'DENY').header('Referrer-Policy', 'no-referrer');
    next();
  });
  admin.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: LOGIN_BODY_LIMIT_BYTES }, (_req, body, parsed) => {
    parsed(null, Object.fromEntries(new URLSearchParams(body.toString())));
  });

  admin.get('/', (_req, reply) => reply.redirect(DASHBOARD_PATH, 303));

  admin.get<{ Querystring: { next?: string } }>('/login', (req, reply) =>
    reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-store').send(loginPage({ next: safeNext(req.query.next), failed: false })),
  );

  admin.post<{ Body: { key?: unknown; next?: unknown } | undefined }>('/login', (req, reply) => {
    const key = typeof req.body?.key === 'string' ? req.body.key : undefined;
    const next = safeNext(req.body?.next);
    const cookie = key ? session.issue(key) : undefined;
    if (!cookie) {
      return reply.code(401).type('text/html; charset=utf-8').header('Cache-Control', 'no-store').send(loginPage({ next, failed: true }));
    }
    return reply
      .header('Set-Cookie', sessionCookie(cookie, session.ttlSeconds, isHttps(req)))
      .header('Cache-Control', 'no-store')
      .redirect(next, 303);
  });

  const logout = (req: FastifyRequest, reply: FastifyReply): FastifyReply =>
    reply.header('Set-Cookie', sessionCookie('', 0, isHttps(req))).redirect(LOGIN_PATH, 303);
  admin.get('/logout', logout);
  admin.post('/logout', logout);

  // The dashboard in a scope of its own, so that the guard covers it and not the login form.
  admin.register((dashboard, _opts, registered) => {
    dashboard.addHook('onRequest', (req, reply, next) => {
      if (session.verify(readCookie(req, ADMIN_COOKIE))) return next();
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
      if (bearer && session.isAdminKey(bearer)) return next();
      if (!bearer && req.method === 'GET' && (req.headers.accept ?? '').includes('text/html')) {
        void reply.redirect(`${LOGIN_PATH}?next=${encodeURIComponent(req.url)}`, 303);
        return;
      }
      const error = bearer
        ? new GatewayError(ErrorType.Unauthorized, 'Invalid admin key', 'invalid_admin_key')
        : new GatewayError(ErrorType.Unauthorized, `Admin login required: log in at ${LOGIN_PATH} or send Authorization: Bearer <admin key>`, 'admin_login_required');
      void reply.code(401).header('WWW-Authenticate', 'Bearer').send(error.toResponse());
    });
    const board = new BullBoardFastifyAdapter();
    board.setBasePath(DASHBOARD_PATH);
    createBullBoard({
      queues: queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode: true, description: `${queue.name} provider jobs` })),
      serverAdapter: board,
      options: {
        uiConfig: {
          boardTitle: 'Inference gateway',
          miscLinks: [{ text: 'Log out', url: `${ADMIN_PREFIX}/logout` }],
          hideDocsLink: true,
        },
      },
    });
    void dashboard.register(board.registerPlugin(), { prefix: DASHBOARD_PATH.slice(ADMIN_PREFIX.length) });
    registered();
  });
  done();
}

/** Where to go after login: only a dashboard path, so the form is no open redirect. */
function safeNext(next: unknown): string {
  if (typeof next !== 'string') return DASHBOARD_PATH;
  const ok = (next === DASHBOARD_PATH || next.startsWith(`${DASHBOARD_PATH}/`) || next.startsWith(`${DASHBOARD_PATH}?`)) && !/[\\\s]|\/\//.test(next);
  return ok ? next : DASHBOARD_PATH;
}

function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  const attributes = [`${ADMIN_COOKIE}=${value}`, `Path=${ADMIN_PREFIX}`, `Max-Age=${maxAgeSeconds}`, 'HttpOnly', 'SameSite=Strict'];
  if (secure) attributes.push('Secure');
  return attributes.join('; ');
}

/** Behind a TLS-terminating proxy the request arrives as http; its X-Forwarded-Proto says https. */
function isHttps(req: FastifyRequest): boolean {
  return req.protocol === 'https' || req.headers['x-forwarded-proto'] === 'https';
}

function readCookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
