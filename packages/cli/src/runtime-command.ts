/**
 * `gust runtime list|add|default`: an operator's view of runtime versions,
 * through a frontend's admin API (`/gust/admin/runtimes`, bearer token
 * GUST_ADMIN_TOKEN). Behind a load balancer any frontend answers: versions
 * and defaults live in the fleet's registry, not in one frontend.
 *
 *   gust runtime list [RUNTIME]
 *   gust runtime add RUNTIME VERSION --bootstrap 2.0.0 [--node-flag=--enable-source-maps]…
 *                    [--allow-child-process] [--allow-worker]
 *                    [--entrypoint bootstrap] [--description TEXT]
 *   gust runtime default RUNTIME VERSION
 */
import { parseArgs } from "node:util";

import { RUNTIME_ADMIN_PATH, type RuntimeVersionView, type RuntimeView } from "@gust/frontend";
import { ConfigError, grantedPermissions, Runtimes, type RuntimeRecipe } from "@gust/protocol";
import { DEFAULT_ENDPOINT } from "./client.js";
import { adminCall, type AdminEndpoint } from "./admin-client.js";
import { textTable } from "./text-table.js";

export const RUNTIME_USAGE = `Usage: gust runtime <list|add|default> [options]

  list [RUNTIME]              every runtime's versions (* marks the default)
  add RUNTIME VERSION         register a version (immutable once added)
      --bootstrap V           nodejs20.x: the Node.js bootstrap it runs (1.0.0, 2.0.0)
      --node-flag=FLAG        nodejs20.x: a flag for node, e.g. --node-flag=--enable-source-maps (repeatable)
      --allow-child-process   nodejs20.x: handlers may start processes (safe only with root workers)
      --allow-worker          nodejs20.x: handlers may start worker threads (likewise)
      --entrypoint FILE       provided*: the bundle's executable to start (default bootstrap)
      --description TEXT
  default RUNTIME VERSION     make VERSION the default: every Auto function moves to it

  --endpoint URL (else $GUST_ENDPOINT, else ${DEFAULT_ENDPOINT})
  The frontend's admin token is read from $GUST_ADMIN_TOKEN.
`;

const OPTIONS = {
  endpoint: { type: "string" },
  bootstrap: { type: "string" },
  "node-flag": { type: "string", multiple: true },
  "allow-child-process": { type: "boolean" },
  "allow-worker": { type: "boolean" },
  entrypoint: { type: "string" },
  description: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Admin = AdminEndpoint;

function call<T>(admin: Admin, method: string, path: string, body?: unknown): Promise<T> {
  return adminCall<T>(admin, "runtime-admin", method, path, body);
}

function recipeText(recipe: RuntimeRecipe): string {
  if (recipe.kind === "provided") return `entrypoint ${recipe.entrypoint}`;
  return [
    `bootstrap ${recipe.bootstrap}`,
    ...grantedPermissions(recipe.permissions),
    ...recipe.nodeFlags,
  ].join(" ");
}

export function formatRuntimes(runtimes: RuntimeView[]): string {
  const rows = [["RUNTIME", "VERSION", "DEFAULT", "RECIPE", "ARN"]];
  for (const runtime of runtimes) {
    for (const version of runtime.versions) {
      rows.push([
        version.runtime,
        version.version,
        version.isDefault ? "*" : "",
        recipeText(version.recipe),
        version.arn,
      ]);
    }
  }
  return `${textTable(rows)}\n`;
}

function recipeFrom(runtime: string, values: ReturnType<typeof parse>["values"]): RuntimeRecipe {
  if (runtime === Runtimes.nodejs20) {
    if (values.entrypoint !== undefined) {
      throw new ConfigError("--entrypoint is for provided runtimes; nodejs20.x takes --bootstrap");
    }
    if (values.bootstrap === undefined) {
      throw new ConfigError("gust runtime add nodejs20.x VERSION needs --bootstrap (e.g. 2.0.0)");
    }
    const childProcess = values["allow-child-process"] === true;
    const workerThreads = values["allow-worker"] === true;
    return {
      kind: "node",
      bootstrap: values.bootstrap,
      nodeFlags: values["node-flag"] ?? [],
      ...(childProcess || workerThreads
        ? {
            permissions: {
              ...(childProcess ? { childProcess } : {}),
              ...(workerThreads ? { workerThreads } : {}),
            },
          }
        : {}),
    };
  }
  if (
    values.bootstrap !== undefined ||
    values["node-flag"] !== undefined ||
    values["allow-child-process"] !== undefined ||
    values["allow-worker"] !== undefined
  ) {
    throw new ConfigError(
      `--bootstrap, --node-flag, --allow-child-process and --allow-worker are for nodejs20.x, not ${runtime}`,
    );
  }
  return { kind: "provided", entrypoint: values.entrypoint ?? "bootstrap" };
}

function parse(args: string[]) {
  return parseArgs({ args, options: OPTIONS, allowPositionals: true });
}

/** Runs `gust runtime …` with the arguments after `runtime`; returns what to print. */
export async function runRuntimeCommand(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const { values, positionals } = parse(args);
  const [action, runtime, version, ...extra] = positionals;
  if (action === undefined || values.help) return RUNTIME_USAGE;
  const token = env["GUST_ADMIN_TOKEN"];
  if (token === undefined || token === "") {
    throw new ConfigError("gust runtime needs the frontend's admin token in $GUST_ADMIN_TOKEN");
  }
  const admin: Admin = {
    endpoint: values.endpoint ?? env["GUST_ENDPOINT"] ?? DEFAULT_ENDPOINT,
    token,
  };
  const runtimePath = (name: string) => `${RUNTIME_ADMIN_PATH}/${encodeURIComponent(name)}`;
  switch (action) {
    case "list": {
      if (version !== undefined) throw new ConfigError(`usage: gust runtime list [RUNTIME]`);
      const runtimes =
        runtime === undefined
          ? (await call<{ runtimes: RuntimeView[] }>(admin, "GET", RUNTIME_ADMIN_PATH)).runtimes
          : [await call<RuntimeView>(admin, "GET", runtimePath(runtime))];
      return formatRuntimes(runtimes);
    }
    case "add": {
      if (runtime === undefined || version === undefined || extra.length > 0) {
        throw new ConfigError("usage: gust runtime add RUNTIME VERSION --bootstrap V …");
      }
      const added = await call<RuntimeVersionView>(
        admin,
        "POST",
        `${runtimePath(runtime)}/versions`,
        {
          version,
          recipe: recipeFrom(runtime, values),
          ...(values.description === undefined ? {} : { description: values.description }),
        },
      );
      return `${added.name} added: ${added.arn}\n`;
    }
    case "default": {
      if (runtime === undefined || version === undefined || extra.length > 0) {
        throw new ConfigError("usage: gust runtime default RUNTIME VERSION");
      }
      const view = await call<RuntimeView>(admin, "PUT", `${runtimePath(runtime)}/default`, {
        version,
      });
      const chosen = view.versions.find((candidate) => candidate.isDefault);
      return `${runtime} now defaults to ${view.defaultVersion}${chosen ? ` (${chosen.arn})` : ""}\n`;
    }
    default:
      throw new ConfigError(`unknown runtime action ${action}\n\n${RUNTIME_USAGE}`);
  }
}
