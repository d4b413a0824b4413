import { freePort } from '../support/free-port';
import * as fs from 'node:fs';
import * as path from 'node:path';
import IORedis from 'ioredis';
import { Queue, QueueKeys } from 'bullmq';
import { ALL_QUEUES, newJobId, QueueName } from '@lib/contracts';
import { GatewayConfig, loadConfig } from '@lib/config';
import { bullQueueName } from '@lib/queue';
import { chooseQueues } from '../../apps/worker/src/worker.factory';
import { deleteKeys, GatewayHarness, REDIS_URL } from '../support/gateway-harness';
import { configEnvNames, containerPort, DEPLOY_DIR, httpProbes, isConfigEnvName, Manifest, parseYamlFile, ROOT, yamlFiles } from './deploy-files';

/**
 * The Kubernetes example under deploy/ checked offline (no kubectl here): structure, and that it
 * cannot drift from the code: env names libs/config reads, probe paths the apps serve, the
 * BullMQ key KEDA watches, and a shutdown grace the worker can keep.
 */
const KNOWN_KINDS: Record<string, string[]> = {
  v1: ['ConfigMap', 'Secret', 'Service'],
  'apps/v1': ['Deployment', 'StatefulSet'],
  'policy/v1': ['PodDisruptionBudget'],
  'keda.sh/v1alpha1': ['ScaledObject', 'TriggerAuthentication'],
  'kustomize.config.k8s.io/v1beta1': ['Kustomization'],
};
const EXAMPLE_SECRET = /\.example\.ya?ml$/;
/** What the stand-in for each secret looks like to loadConfig (the example holds placeholders). */
const SECRET_STAND_INS: Record<string, string> = { API_KEYS: 'deploy-test-key', ADMIN_API_KEYS: 'deploy-test-admin-key-0123456789' };

const files = yamlFiles(DEPLOY_DIR);
const manifests: Manifest[] = files.flatMap(parseYamlFile);
const ofKind = (kind: string): any[] => manifests.filter((m) => m.doc.kind === kind).map((m) => m.doc);
const named = (kind: string, name: string): any => ofKind(kind).find((d) => d.metadata?.name === name);
const workloads = (): any[] => [...ofKind('Deployment'), ...ofKind('StatefulSet')];
const gatewayDeployments = (component: string): any[] =>
  ofKind('Deployment').filter((d) => d.spec.template.metadata.labels['app.kubernetes.io/component'] === component);
const containersOf = (workload: any): any[] => workload.spec.template.spec.containers;
const exampleSecret = (): any => manifests.find((m) => EXAMPLE_SECRET.test(m.file) && m.doc.kind === 'Secret')!.doc;

/** The environment a container starts with: its ConfigMaps, then its own env (secrets as stand-ins). */
function effectiveEnv(container: any): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, named('ConfigMap', from.configMapRef.name).data);
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.secretKeyRef) env[e.name] = SECRET_STAND_INS[e.name] ?? `stand-in-${e.name.toLowerCase()}`;
  }
  return env;
}

const configOf = (container: any): GatewayConfig => loadConfig(effectiveEnv(container));

/** The single queue a worker Deployment serves (WORKER_QUEUES). */
function queueOf(deployment: any): QueueName {
  const queues = configOf(containersOf(deployment)[0]).workerQueues;
  expect(queues).toHaveLength(1);
  return queues![0];
}

describe('deploy/: Kubernetes manifests', () => {
  it('parse; every document has a known apiVersion and kind, and a name', () => {
    expect(files.length).toBeGreaterThan(0);
    for (const { file, doc } of manifests) {
      const where = `${file} (${doc.kind ?? '?'})`;
      expect({ where, kind: KNOWN_KINDS[doc.apiVersion]?.includes(doc.kind) ?? false }).toEqual({ where, kind: true });
      if (doc.kind !== 'Kustomization') expect({ where, name: typeof doc.metadata?.name === 'string' && doc.metadata.name.length > 0 }).toEqual({ where, name: true });
      // Namespace-agnostic: the namespace is chosen when applying.
      expect({ where, namespace: doc.metadata?.namespace }).toEqual({ where, namespace: undefined });
    }
    for (const kind of ['Deployment', 'StatefulSet', 'Service', 'ConfigMap', 'ScaledObject', 'TriggerAuthentication']) {
      expect({ kind, count: ofKind(kind).length > 0 }).toEqual({ kind, count: true });
    }
  });

  it('the kustomization lists every manifest of its folder but the example Secret, and nothing missing', () => {
    for (const { file, doc } of manifests.filter((m) => m.doc.kind === 'Kustomization')) {
      const dir = path.dirname(file);
      const listed: string[] = doc.resources;
      for (const resource of listed) expect({ resource, exists: fs.existsSync(path.join(ROOT, dir, resource)) }).toEqual({ resource, exists: true });
      const siblings = files.filter((f) => path.dirname(f) === dir && f !== file).map((f) => path.basename(f));
      expect([...listed].sort()).toEqual(siblings.filter((f) => !EXAMPLE_SECRET.test(f)).sort());
    }
  });

  it('workloads: selectors match their pod labels; every container has an image, requests and a memory limit; probes name a declared port', () => {
    for (const workload of workloads()) {
      const { matchLabels } = workload.spec.selector;
      expect(Object.keys(matchLabels).length).toBeGreaterThan(0);
      expect(workload.spec.template.metadata.labels).toMatchObject(matchLabels);
      for (const c of containersOf(workload)) {
        const where = `${workload.metadata.name}/${c.name}`;
        expect({ where, image: typeof c.image === 'string' && c.image.length > 0 }).toEqual({ where, image: true });
        expect({ where, requests: c.resources?.requests?.cpu !== undefined && c.resources?.requests?.memory !== undefined }).toEqual({ where, requests: true });
        expect({ where, memoryLimit: c.resources?.limits?.memory !== undefined }).toEqual({ where, memoryLimit: true });
        for (const probe of httpProbes(c)) expect({ where, probe: probe.kind, port: containerPort(c, probe.port) }).toEqual({ where, probe: probe.kind, port: expect.any(Number) });
      }
    }
    for (const service of ofKind('Service')) {
      const target = workloads().find((w) => Object.entries(service.spec.selector).every(([k, v]) => w.spec.template.metadata.labels[k] === v));
      expect({ service: service.metadata.name, selects: target?.metadata.name }).toEqual({ service: service.metadata.name, selects: expect.any(String) });
    }
  });

  it('every env variable, ConfigMap key and env-style Secret key is one libs/config reads', () => {
    const known = configEnvNames();
    for (const sure of ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'API_KEYS', 'WORKER_QUEUES', 'WORKER_SHUTDOWN_GRACE_MS']) expect(known.names).toContain(sure);
    expect(known.prefixes).toContain('WORKER_CONCURRENCY_');
    const used = new Set<string>();
    for (const w of gatewayDeployments('api').concat(gatewayDeployments('worker'))) {
      for (const c of containersOf(w)) for (const e of c.env ?? []) used.add(e.name);
    }
    for (const cm of ofKind('ConfigMap')) for (const key of Object.keys(cm.data ?? {})) used.add(key);
    const secret = exampleSecret();
    const authKeys = ofKind('TriggerAuthentication').flatMap((t) => t.spec.secretTargetRef.map((r: any) => r.key));
    for (const key of Object.keys(secret.stringData ?? secret.data)) if (!authKeys.includes(key)) used.add(key);
    const unknown = [...used].filter((name) => !isConfigEnvName(name, known));
    expect(unknown).toEqual([]);
    expect(used.size).toBeGreaterThan(10);
  });

  it('the example Secret holds placeholders only, and every secret and ConfigMap reference resolves', () => {
    const secret = exampleSecret();
    for (const [key, value] of Object.entries<string>(secret.stringData)) {
      expect({ key, placeholder: value === '' || /^<replace-with-[^>]+>$/.test(value) }).toEqual({ key, placeholder: true });
    }
    const refs = workloads().flatMap((w) => containersOf(w).flatMap((c) => (c.env ?? []).map((e: any) => e.valueFrom?.secretKeyRef).filter(Boolean)));
    refs.push(...ofKind('TriggerAuthentication').flatMap((t) => t.spec.secretTargetRef));
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect({ ref, found: ref.name === secret.metadata.name && ref.key in secret.stringData }).toEqual({ ref, found: true });
    for (const w of workloads()) {
      for (const c of containersOf(w)) for (const from of c.envFrom ?? []) expect(named('ConfigMap', from.configMapRef.name)).toBeDefined();
    }
  });

  it("each gateway container's environment is a configuration loadConfig accepts, on the port its probes use", () => {
    for (const api of gatewayDeployments('api')) {
      for (const c of containersOf(api)) {
        const config = configOf(c);
        expect(config.host).toBe('0.0.0.0');
        expect(config.apiKeys.length).toBeGreaterThan(0);
        expect(httpProbes(c).map((p) => p.kind).sort()).toEqual(['livenessProbe', 'readinessProbe']);
        for (const probe of httpProbes(c)) expect(containerPort(c, probe.port)).toBe(config.port);
      }
    }
    for (const worker of gatewayDeployments('worker')) {
      const c = containersOf(worker)[0];
      const config = configOf(c);
      expect(httpProbes(c).map((p) => p.kind)).toEqual(['livenessProbe']);
      for (const probe of httpProbes(c)) expect(containerPort(c, probe.port)).toBe(config.workerMetricsPort);
    }
  });

  it('a worker gets longer to stop than WORKER_SHUTDOWN_GRACE_MS, so jobs are handed back before SIGKILL', () => {
    const workers = gatewayDeployments('worker');
    expect(workers.length).toBeGreaterThan(0);
    for (const worker of workers) {
      const graceMs = configOf(containersOf(worker)[0]).workerShutdownGraceMs;
      expect({ worker: worker.metadata.name, longer: worker.spec.template.spec.terminationGracePeriodSeconds > graceMs / 1000 }).toEqual({
        worker: worker.metadata.name,
        longer: true,
      });
    }
  });

  it('one worker Deployment and one ScaledObject per queue, each watching the wait list BullMQ uses for it', () => {
    const workers = gatewayDeployments('worker');
    expect(workers.map(queueOf).sort()).toEqual([...ALL_QUEUES].sort());
    const scaled = ofKind('ScaledObject');
    expect(scaled).toHaveLength(ALL_QUEUES.length);
    for (const so of scaled) {
      const target = named('Deployment', so.spec.scaleTargetRef.name);
      expect({ so: so.metadata.name, target: target?.metadata.name }).toEqual({ so: so.metadata.name, target: so.spec.scaleTargetRef.name });
      const config = configOf(containersOf(target)[0]);
      const cluster = config.redisClusterNodes !== undefined;
      const queue = queueOf(target);
      expect(so.spec.triggers).toHaveLength(1);
      const [trigger] = so.spec.triggers;
      expect(trigger.type).toBe(cluster ? 'redis-cluster' : 'redis');
      expect(trigger.metadata.listName).toBe(new QueueKeys(config.queuePrefix).getKeys(bullQueueName(queue, cluster)).wait);
      expect(named('TriggerAuthentication', trigger.authenticationRef.name)).toBeDefined();
      // KEDA owns replicas once applied; the manifest starts at KEDA's minimum.
      expect(target.spec.replicas).toBe(so.spec.minReplicaCount);
      expect(so.spec.maxReplicaCount).toBeGreaterThanOrEqual(Math.max(1, so.spec.minReplicaCount));
    }
  });

  it('a worker that starts at one replica can serve its queue with the example configuration', () => {
    const always = ofKind('ScaledObject').filter((so) => so.spec.minReplicaCount > 0);
    expect(always.length).toBeGreaterThan(0);
    for (const so of always) {
      const target = named('Deployment', so.spec.scaleTargetRef.name);
      expect(chooseQueues(configOf(containersOf(target)[0]))).toEqual([queueOf(target)]);
    }
  });

  it("BullMQ 5 keeps a queue's waiting jobs in a Redis LIST under that key, which is what KEDA's LLEN counts", async () => {
    const prefix = `tdeploy${Date.now().toString(36)}`;
    const redis = new IORedis(REDIS_URL);
    const queue = new Queue(bullQueueName(QueueName.OpenAI, false), { connection: { url: REDIS_URL }, prefix });
    try {
      await queue.add('probe', { n: 1 }, { jobId: newJobId(QueueName.OpenAI) });
      await queue.add('probe', { n: 2 }, { jobId: newJobId(QueueName.OpenAI) });
      const listName = new QueueKeys(prefix).getKeys(bullQueueName(QueueName.OpenAI, false)).wait;
      expect(await redis.type(listName)).toBe('list');
      expect(await redis.llen(listName)).toBe(2);
      // A job waiting for its retry is not in that list (KEDA does not count it).
      await queue.add('probe', { n: 3 }, { jobId: newJobId(QueueName.OpenAI), delay: 60_000 });
      expect(await redis.llen(listName)).toBe(2);
      expect(await redis.type(new QueueKeys(prefix).getKeys(bullQueueName(QueueName.OpenAI, false)).delayed)).toBe('zset');
    } finally {
      await queue.close();
      await deleteKeys(`${prefix}:*`);
      redis.disconnect();
    }
  });

  describe('probes', () => {
    let gw: GatewayHarness;
    let metricsPort: number;

    beforeAll(async () => {
      metricsPort = await freePort();
      gw = new GatewayHarness({ OPENAI_API_KEY: 'sk-deploy-test', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' });
      await gw.startApi();
      await gw.startWorker({ WORKER_QUEUES: 'openai', WORKER_METRICS_PORT: String(metricsPort), WORKER_METRICS_HOST: '127.0.0.1' });
    });
    afterAll(() => gw?.close());

    it('point at paths the API and the worker really serve (200 on a healthy gateway)', async () => {
      const checked: string[] = [];
      for (const component of ['api', 'worker']) {
        for (const d of gatewayDeployments(component)) {
          for (const c of containersOf(d)) {
            for (const probe of httpProbes(c)) {
              const base = component === 'api' ? gw.url : `http://127.0.0.1:${metricsPort}`;
              const res = await fetch(base + probe.path);
              expect({ where: `${d.metadata.name} ${probe.kind} ${probe.path}`, status: res.status }).toEqual({
                where: `${d.metadata.name} ${probe.kind} ${probe.path}`,
                status: 200,
              });
              checked.push(`${component} ${probe.path}`);
            }
          }
        }
      }
      expect(new Set(checked)).toEqual(new Set(['api /health', 'worker /health']));
    });
  });
});
