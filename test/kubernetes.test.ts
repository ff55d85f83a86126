/**
 * deploy/kubernetes: the kustomize base (and its examples) rendered by a real `kubectl
 * kustomize` (Debian's kubernetes-client, 1.20, in CI), and what the objects promise checked on
 * the rendered YAML. The ConfigMap's config goes through `drum-splitter check`; the token file
 * through the proxy's own token reader.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse, parseAllDocuments } from 'yaml';
import { loadTokens } from '../src/admin/auth.js';
import { parseDuration } from '../src/common/units.js';

const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const available = spawnSync(KUBECTL, ['version', '--client'], { stdio: 'ignore' }).status === 0;
const skip = available ? false : `${KUBECTL} not installed (Debian package kubernetes-client)`;

const BASE = fileURLToPath(new URL('../deploy/kubernetes/', import.meta.url));
const EXAMPLES = join(BASE, 'examples');
const BUILT_CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));

/* Just enough of the Kubernetes objects' shapes for the checks below. */
type Labels = Record<string, string>;
interface Probe { httpGet?: { path: string; port: string | number } }
interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}
interface Volume {
  name: string;
  emptyDir?: object;
  configMap?: { name: string };
  projected?: { sources: { configMap?: { name: string; items?: { key: string; path: string }[] }; secret?: { name: string; items?: { key: string; path: string }[] } }[] };
}
interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  terminationGracePeriodSeconds?: number;
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Labels; annotations?: Labels };
  // Each kind's spec, as far as the tests read it.
  spec?: {
    replicas?: number;
    strategy?: { type: string };
    /** A Service's labels, or the others' { matchLabels }. */
    selector?: { matchLabels?: Labels; [label: string]: unknown };
    template?: { metadata: { labels: Labels; annotations?: Labels }; spec: PodSpec };
    clusterIP?: string;
    ports?: { name?: string; port: number; targetPort?: string | number }[];
    maxUnavailable?: number;
    minAvailable?: number;
    podSelector?: { matchLabels: Labels };
    policyTypes?: string[];
    ingress?: { from?: { podSelector?: { matchLabels: Labels }; namespaceSelector?: { matchLabels: Labels } }[]; ports?: { port: number }[] }[];
    endpoints?: { port: string; path: string; interval: string }[];
  };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

function render(dir: string): K8sObject[] {
  const r = spawnSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${KUBECTL} kustomize ${dir}: ${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject);
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name}`);
  return found;
}

/** Whether `selector` (matchLabels) picks pods with `labels`. */
const selects = (selector: Labels | undefined, labels: Labels): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** A flag's value in a container's args: `--name value`. */
function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? undefined : args[i + 1];
}

const podLabels = (d: K8sObject): Labels => d.spec!.template!.metadata.labels;
const containerOf = (d: K8sObject): Container => d.spec!.template!.spec.containers[0]!;

let base: K8sObject[];
let examples: K8sObject[];
t.before(() => {
  if (!available) return;
  base = render(BASE);
  examples = render(EXAMPLES);
});

t.test('the base holds every object, and lists every manifest beside it', { skip }, async (t) => {
  const kinds = base.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  t.same(kinds, [
    'ConfigMap/drum-splitter-config',
    'Deployment/drum-splitter',
    'Deployment/drum-splitter-controller',
    'NetworkPolicy/drum-splitter',
    'PodDisruptionBudget/drum-splitter',
    'Secret/drum-splitter-admin-token',
    'Service/drum-splitter',
    'Service/drum-splitter-admin',
    'ServiceMonitor/drum-splitter',
  ]);
  const kustomization = parse(readFileSync(join(BASE, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  const manifests = readdirSync(BASE).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  // prometheus-scrape.yaml is Prometheus' configuration, not a Kubernetes object.
  t.same([...kustomization.resources].sort(), manifests.filter((f) => f !== 'prometheus-scrape.yaml').sort());
  t.same(examples.map((o) => `${o.kind}/${o.metadata.name}`).sort(), ['Deployment/drum-fastapi', 'Deployment/drum-flask', 'Service/drum-fastapi', 'Service/drum-flask']);
});

t.test('every container: non-root, read-only root filesystem, no privileges, probes on its own ports', { skip }, async (t) => {
  for (const d of [...base, ...examples].filter((o) => o.kind === 'Deployment')) {
    const pod = d.spec!.template!.spec;
    t.ok(selects(d.spec!.selector!.matchLabels, podLabels(d)), `${d.metadata.name}: its selector picks its pods`);
    for (const c of pod.containers) {
      const at = `${d.metadata.name}/${c.name}`;
      const sc = c.securityContext ?? {};
      t.ok(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, `${at}: runAsNonRoot`);
      t.ok((sc.runAsUser ?? pod.securityContext?.runAsUser ?? 0) > 0, `${at}: a user other than root`);
      t.equal(sc.readOnlyRootFilesystem, true, `${at}: read-only root filesystem`);
      t.equal(sc.allowPrivilegeEscalation, false, `${at}: no privilege escalation`);
      t.same(sc.capabilities?.drop, ['ALL'], `${at}: every capability dropped`);
      t.ok(c.resources?.limits?.memory, `${at}: a memory limit`);
      const ports = (c.ports ?? []).map((p) => p.name);
      for (const probe of ['readinessProbe', 'livenessProbe'] as const) {
        const get = c[probe]?.httpGet;
        t.ok(get, `${at}: ${probe}`);
        t.ok(ports.includes(String(get?.port)), `${at}: ${probe} on a port it declares (${String(get?.port)})`);
      }
      // A read-only root needs somewhere to write: /tmp (the proxy's body spill files) on an emptyDir.
      const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
      t.ok(pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir, `${at}: /tmp is an emptyDir`);
    }
  }
  for (const name of ['drum-splitter', 'drum-splitter-controller']) {
    t.equal(find(base, 'Deployment', name).spec!.template!.spec.securityContext?.runAsUser, 1000, `${name}: the image's node user`);
  }
});

t.test('the proxy: 3 replicas, probes, drain inside the grace period, metrics annotations', { skip }, async (t) => {
  const proxy = find(base, 'Deployment', 'drum-splitter');
  const c = containerOf(proxy);
  t.equal(proxy.spec!.replicas, 3);
  t.same(podLabels(proxy), { 'app.kubernetes.io/name': 'drum-splitter', 'app.kubernetes.io/component': 'proxy' });
  t.equal(c.args![0], 'serve');
  t.equal(flag(c.args!, 'listen'), '0.0.0.0:8000');
  t.equal(flag(c.args!, 'admin'), '0.0.0.0:9901');
  t.same([c.readinessProbe?.httpGet, c.livenessProbe?.httpGet], [{ path: '/readyz', port: 'admin' }, { path: '/healthz', port: 'admin' }]);
  t.same(c.ports, [{ name: 'http', containerPort: 8000 }, { name: 'admin', containerPort: 9901 }]);

  // The kubelet counts the preStop hook in the grace period: sleep, then drain, then the margin.
  const [sleep, seconds] = c.lifecycle!.preStop!.exec!.command;
  t.equal(sleep, 'sleep');
  const drainMs = parseDuration(flag(c.args!, 'drain-timeout'), 'drain-timeout');
  const graceMs = proxy.spec!.template!.spec.terminationGracePeriodSeconds! * 1000;
  t.ok(Number(seconds) > 0, 'a preStop sleep');
  t.ok(graceMs > Number(seconds) * 1000 + drainMs, `grace ${graceMs} ms > preStop ${seconds} s + drain ${drainMs} ms`);

  t.same(proxy.spec!.template!.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9901', 'prometheus.io/path': '/metrics' });
  t.same(c.resources, { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } });

  const pdb = find(base, 'PodDisruptionBudget', 'drum-splitter');
  t.ok(selects(pdb.spec!.selector!.matchLabels, podLabels(proxy)), 'the PDB covers the proxies');
  t.equal(pdb.spec!.maxUnavailable, 1);
});

t.test('config and tokens: one directory mount, the files the args name', { skip }, async (t) => {
  for (const name of ['drum-splitter', 'drum-splitter-controller']) {
    const d = find(base, 'Deployment', name);
    const c = containerOf(d);
    const config = flag(c.args!, 'config')!;
    const tokens = flag(c.args!, 'admin-token-file')!;
    const mount = c.volumeMounts!.find((m) => m.mountPath === dirname(config))!;
    // subPath would pin the file as it was at the start: the watch would never see an edit.
    t.equal(mount.subPath, undefined, `${name}: ${dirname(config)} is mounted whole, no subPath`);
    const sources = d.spec!.template!.spec.volumes!.find((v) => v.name === mount.name)!.projected!.sources;
    t.same(sources.find((s) => s.configMap)!.configMap, { name: 'drum-splitter-config', items: [{ key: 'config.yaml', path: basename(config) }] }, `${name}: ${config}`);
    const tokenPath = tokens.slice(dirname(config).length + 1);
    t.same(sources.find((s) => s.secret)!.secret, { name: 'drum-splitter-admin-token', items: [{ key: 'tokens', path: tokenPath }] }, `${name}: ${tokens}`);
  }
});

t.test("the ConfigMap's config passes drum-splitter check, with the seed's plan", { skip }, async (t) => {
  const file = join(t.testdir(), 'config.yaml');
  writeFileSync(file, find(base, 'ConfigMap', 'drum-splitter-config').data!['config.yaml']!);
  const r = spawnSync(process.execPath, [BUILT_CLI, 'check', '--config', file], { encoding: 'utf8' });
  t.equal(r.stderr, '');
  t.equal(r.status, 0);
  t.equal(
    r.stdout,
    `drum-splitter: ${file}: ok (2 upstreams, rollout plan: fastapi 1% 5d → 5% 5d → 10% 5d (approve) → 25% 48h → 35% 24h → 50% 72h (approve) → 75% 48h → 90% 5d (approve) → 100% 7d)\n`,
  );
  const config = parse(readFileSync(file, 'utf8')) as { upstreams: Record<string, string>; weights: Record<string, number> };
  t.same(config.upstreams, { flask: 'http://drum-flask:8080', fastapi: 'http://drum-fastapi:8080' }, 'flask first: the baseline');
  t.same(config.weights, { fastapi: 0 });
  // The upstreams are the examples' Services.
  for (const url of Object.values(config.upstreams)) {
    const { hostname, port } = new URL(url);
    t.ok(find(examples, 'Service', hostname).spec!.ports!.some((p) => p.port === Number(port)), `${url} is a Service of examples/`);
  }
});

t.test('the Secret: a token file the proxy accepts, the controller line is the controller token', { skip }, async (t) => {
  const secret = find(base, 'Secret', 'drum-splitter-admin-token');
  const file = join(t.testdir(), 'tokens');
  writeFileSync(file, secret.stringData!.tokens!);
  t.same([...loadTokens({}, file).keys()], ['controller', 'ops'], "the proxy's own reader takes it");
  const lines = secret.stringData!.tokens!.trim().split('\n');
  t.ok(lines.every((l) => l.includes('CHANGE-ME')), 'each token is a marked placeholder');
  t.equal(`controller:${secret.stringData!['controller-token']!}`, lines.find((l) => l.startsWith('controller:')));
});

t.test('Services: traffic on 80, the admin one headless on 9901, ServiceMonitor on it', { skip }, async (t) => {
  const proxyLabels = podLabels(find(base, 'Deployment', 'drum-splitter'));
  const controllerLabels = podLabels(find(base, 'Deployment', 'drum-splitter-controller'));
  const traffic = find(base, 'Service', 'drum-splitter');
  const admin = find(base, 'Service', 'drum-splitter-admin');
  for (const s of [traffic, admin]) {
    t.ok(selects(s.spec!.selector as Labels, proxyLabels), `${s.metadata.name} selects the proxies`);
    t.notOk(selects(s.spec!.selector as Labels, controllerLabels), `${s.metadata.name} does not select the controller`);
  }
  t.same(traffic.spec!.ports, [{ name: 'http', port: 80, targetPort: 'http' }]);
  t.equal(admin.spec!.clusterIP, 'None', 'headless: a DNS record per proxy');
  t.same(admin.spec!.ports, [{ name: 'admin', port: 9901, targetPort: 'admin' }]);

  const monitor = find(base, 'ServiceMonitor', 'drum-splitter');
  t.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
  t.ok(selects(monitor.spec!.selector!.matchLabels, admin.metadata.labels!), 'it selects the admin Service');
  t.same(monitor.spec!.endpoints, [{ port: 'admin', path: '/metrics', interval: '15s' }]);
});

t.test('the controller: one replica, Recreate, the proxies by the headless Service, its token', { skip }, async (t) => {
  const controller = find(base, 'Deployment', 'drum-splitter-controller');
  const c = containerOf(controller);
  t.equal(controller.spec!.replicas, 1);
  t.same(controller.spec!.strategy, { type: 'Recreate' }, 'never two at once');
  t.equal(c.args![0], 'controller');
  t.equal(flag(c.args!, 'proxies-dns'), 'drum-splitter-admin.$(POD_NAMESPACE).svc.cluster.local:9901');
  t.equal(flag(c.args!, 'admin'), '0.0.0.0:9902');
  t.same([c.readinessProbe?.httpGet, c.livenessProbe?.httpGet], [{ path: '/readyz', port: 'admin' }, { path: '/healthz', port: 'admin' }]);
  t.same(c.ports, [{ name: 'admin', containerPort: 9902 }]);
  const env = Object.fromEntries(c.env!.map((e) => [e.name, e.valueFrom]));
  t.same(env.POD_NAMESPACE, { fieldRef: { fieldPath: 'metadata.namespace' } });
  t.same(env.DRUM_SPLITTER_ADMIN_TOKEN, { secretKeyRef: { name: 'drum-splitter-admin-token', key: 'controller-token' } });
  const stateDir = dirname(flag(c.args!, 'state')!);
  const mount = c.volumeMounts!.find((m) => m.mountPath === stateDir);
  t.ok(controller.spec!.template!.spec.volumes!.find((v) => v.name === mount?.name), `${stateDir} is a volume`);
});

t.test('the NetworkPolicy: 8000 open, 9901 only from the controller and monitoring', { skip }, async (t) => {
  const policy = find(base, 'NetworkPolicy', 'drum-splitter');
  const proxyLabels = podLabels(find(base, 'Deployment', 'drum-splitter'));
  t.ok(selects(policy.spec!.podSelector!.matchLabels, proxyLabels), 'it applies to the proxies');
  t.same(policy.spec!.policyTypes, ['Ingress']);
  const rules = policy.spec!.ingress!;
  const admits = (port: number) => rules.filter((r) => r.ports === undefined || r.ports.some((p) => p.port === port));
  t.same(admits(8000).map((r) => r.from), [undefined], '8000: from anywhere');
  const admin = admits(9901);
  t.equal(admin.length, 1, 'one rule reaches 9901');
  const from = admin[0]!.from!;
  t.equal(from.length, 2);
  t.ok(selects(from[0]!.podSelector?.matchLabels, podLabels(find(base, 'Deployment', 'drum-splitter-controller'))), 'the controller pods');
  t.notOk(selects(from[0]!.podSelector?.matchLabels, proxyLabels), 'not the proxies themselves');
  t.same(from[1], { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }, 'the monitoring namespace');
});

t.test('prometheus-scrape.yaml keeps the pods by the annotations the proxies carry', { skip }, async (t) => {
  const scrape = parse(readFileSync(join(BASE, 'prometheus-scrape.yaml'), 'utf8')) as { scrape_configs: { relabel_configs: { source_labels?: string[] }[] }[] };
  const used = scrape.scrape_configs.flatMap((c) => c.relabel_configs.flatMap((r) => r.source_labels ?? []));
  for (const annotation of Object.keys(find(base, 'Deployment', 'drum-splitter').spec!.template!.metadata.annotations!)) {
    // Prometheus' discovery turns an annotation's name into a label: non-alphanumerics become "_".
    t.ok(used.includes(`__meta_kubernetes_pod_annotation_${annotation.replace(/[^a-zA-Z0-9]/g, '_')}`), annotation);
  }
});

t.test('the examples: DRUM as the seed runs it, flask and fastapi', { skip }, async (t) => {
  for (const type of ['flask', 'fastapi']) {
    const d = find(examples, 'Deployment', `drum-${type}`);
    const c = containerOf(d);
    t.same(c.env, [{ name: 'MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE', value: type }]);
    t.equal(flag(c.args!, 'address'), '0.0.0.0:8080');
    t.ok(selects(find(examples, 'Service', `drum-${type}`).spec!.selector as Labels, podLabels(d)), `Service drum-${type} selects them`);
  }
});

t.test("every drum-splitter container's flags are in its command's --help", { skip }, async (t) => {
  for (const d of base.filter((o) => o.kind === 'Deployment')) {
    const args = containerOf(d).args!;
    const help = spawnSync(process.execPath, [BUILT_CLI, args[0]!, '--help'], { encoding: 'utf8' });
    t.equal(help.status, 0, `${d.metadata.name}: drum-splitter ${args[0]!} --help`);
    const listed = new Set([...help.stdout.matchAll(/^ +(?:-\w, )?--([a-z][a-z-]*)/gm)].map((m) => m[1]!));
    const flags = args.filter((a) => a.startsWith('--')).map((a) => a.slice(2));
    t.same(flags.filter((f) => !listed.has(f)), [], `${d.metadata.name}: ${flags.join(', ')}`);
  }
});
