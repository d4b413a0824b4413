import { existsSync, mkdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Browser, chromium } from 'playwright-core';
import { ALL_QUEUES } from '@lib/contracts';
import { eventually, GatewayHarness, useOpenAIGateway } from '../support/gateway-harness';

/**
 * The queue dashboard at /admin/queues: refused without a login or with a wrong key, and a
 * real browser (Debian's headless Chromium through playwright-core) logs in through the form,
 * sees every queue and a job that ran to completion through the OpenAI fake.
 */
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');
const SCREENSHOT = path.join(ARTIFACTS, 'admin-queues.png');
const ADMIN_KEY = `admin-${randomBytes(16).toString('hex')}`;
const API_KEY = 'k-admin-e2e-client';
const auth = { authorization: `Bearer ${API_KEY}` };

describe('admin: queue dashboard behind ADMIN_API_KEYS', () => {
  const t = useOpenAIGateway({ API_KEYS: API_KEY, ADMIN_API_KEYS: ADMIN_KEY, SYNC_TIMEOUT_MS: '30000' });
  let browser: Browser | undefined;
  let completedJobId = '';
  const output: string[] = [];
  const writes = { out: process.stdout.write, err: process.stderr.write };

  beforeAll(async () => {
    // Everything this process prints, to show the admin key is never logged.
    process.stdout.write = ((chunk: unknown, ...rest: never[]) => (output.push(String(chunk)), writes.out.call(process.stdout, chunk as string, ...rest))) as typeof process.stdout.write;
    process.stderr.write = ((chunk: unknown, ...rest: never[]) => (output.push(String(chunk)), writes.err.call(process.stderr, chunk as string, ...rest))) as typeof process.stderr.write;

    const accepted = await t.gw.infer({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: ['for the dashboard'] } }, { ...auth, prefer: 'respond-async' });
    expect(accepted.status).toBe(202);
    completedJobId = accepted.body.job_id;
    await eventually(async () => (await t.gw.request('GET', accepted.body.status_url, undefined, auth)).body.status === 'COMPLETED', 15_000, 'the job to complete');

    if (!existsSync(CHROMIUM)) {
      throw new Error(`No Chromium at ${CHROMIUM}: the dashboard test drives a real browser. Install it (apt-get install -y chromium) or set CHROMIUM_PATH.`);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
  });

  it('refuses the dashboard API without a login, with a wrong key, and with a client API key', async () => {
    const anonymous = await t.gw.request('GET', '/admin/queues/api/queues');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ success: false, status: 401, error: { type: 'UnauthorizedError', code: 'admin_login_required' } });
    for (const key of ['wrong-admin-key-0000000000', API_KEY]) {
      const res = await t.gw.request('GET', '/admin/queues/api/queues', undefined, { authorization: `Bearer ${key}` });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('invalid_admin_key');
    }
    const forged = await t.gw.request('GET', '/admin/queues/api/queues', undefined, { cookie: `gw_admin=v1.${Date.now() + 60_000}.00.${'A'.repeat(43)}` });
    expect(forged.status).toBe(401);
    // A browser that navigates there is sent to the login form, not shown the board.
    const page = await fetch(`${t.gw.url}/admin/queues`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/admin/login?next=%2Fadmin%2Fqueues');
  });

  it('the admin key opens the dashboard API (Bearer) and is no client API key', async () => {
    const res = await t.gw.request('GET', '/admin/queues/api/queues', undefined, { authorization: `Bearer ${ADMIN_KEY}` });
    expect(res.status).toBe(200);
    expect(res.body.queues.map((q: { name: string }) => q.name).sort()).toEqual([...ALL_QUEUES].sort());
    const openai = res.body.queues.find((q: { name: string }) => q.name === 'openai');
    expect(openai.readOnlyMode).toBe(true);
    const asClient = await t.gw.infer({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: ['x'] } }, { authorization: `Bearer ${ADMIN_KEY}` });
    expect(asClient.status).toBe(401);
  });

  it('a wrong key at the login form is refused and not echoed; a right one sets an HttpOnly, SameSite=Strict session', async () => {
    const wrong = await fetch(`${t.gw.url}/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key: 'not-the-admin-key-1234', next: '/admin/queues' }),
      redirect: 'manual',
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const html = await wrong.text();
    expect(html).toContain('Wrong admin key');
    expect(html).not.toContain('not-the-admin-key-1234');

    const right = await fetch(`${t.gw.url}/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key: ADMIN_KEY, next: 'https://evil.example/' }),
      redirect: 'manual',
    });
    expect(right.status).toBe(303);
    expect(right.headers.get('location')).toBe('/admin/queues'); // no open redirect
    const cookie = right.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^gw_admin=v1\.\d+\.[0-9a-f]+\.[\w-]+; Path=\/admin; Max-Age=43200; HttpOnly; SameSite=Strict$/);
    expect(cookie).not.toContain(ADMIN_KEY);
    const withSession = await t.gw.request('GET', '/admin/queues/api/queues', undefined, { cookie: cookie.split(';')[0] });
    expect(withSession.status).toBe(200);
    // The board's own assets are served under /admin/queues, behind the same login.
    const asset = '/admin/queues/static/images/logo.svg';
    expect((await fetch(`${t.gw.url}${asset}`)).status).toBe(401);
    const logo = await fetch(`${t.gw.url}${asset}`, { headers: { cookie: cookie.split(';')[0] } });
    expect(logo.status).toBe(200);
    expect(logo.headers.get('content-type')).toMatch(/image\/svg/);
    // Logging out clears the cookie.
    const out = await fetch(`${t.gw.url}/admin/logout`, { headers: { cookie: cookie.split(';')[0] }, redirect: 'manual' });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(/^gw_admin=; Path=\/admin; Max-Age=0;/);
  });

  it('a browser logs in, sees every queue and the completed job; screenshot saved', async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await context.newPage();
      await page.goto(`${t.gw.url}/admin/queues`);
      expect(new URL(page.url()).pathname).toBe('/admin/login');
      await expect(page.locator('text=Queue dashboard').count()).resolves.toBe(1);

      await page.fill('#key', 'wrong-admin-key-0000000000');
      await page.click('button[type=submit]');
      await page.waitForSelector('text=Wrong admin key');
      expect(await context.cookies()).toEqual([]);

      await page.fill('#key', ADMIN_KEY);
      await Promise.all([page.waitForURL(`${t.gw.url}/admin/queues`), page.click('button[type=submit]')]);
      const [session] = await context.cookies();
      expect(session).toMatchObject({ name: 'gw_admin', httpOnly: true, sameSite: 'Strict', path: '/admin' });

      for (const queue of ALL_QUEUES) {
        await page.getByRole('link', { name: queue, exact: true }).first().waitFor({ timeout: 30_000 });
      }
      await page.goto(`${t.gw.url}/admin/queues/queue/${'openai'}?status=completed`);
      await page.getByText(completedJobId).first().waitFor({ timeout: 30_000 });

      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    } finally {
      await context.close();
    }
  }, 120_000);

  it('without ADMIN_API_KEYS every /admin path answers 404 admin_disabled', async () => {
    const plain = new GatewayHarness({ API_KEYS: API_KEY }, t.gw.prefix);
    await plain.startApi();
    try {
      for (const p of ['/admin/queues', '/admin/login', '/admin/queues/api/queues']) {
        const res = await plain.request('GET', p, undefined, { authorization: `Bearer ${ADMIN_KEY}` });
        expect({ p, status: res.status, code: res.body.error?.code }).toEqual({ p, status: 404, code: 'admin_disabled' });
        expect(res.body.error.message).toContain('set ADMIN_API_KEYS');
      }
    } finally {
      await plain.api!.close();
    }
  });

  it('never printed the admin key', () => {
    expect(output.join('')).not.toContain(ADMIN_KEY);
  });
});
