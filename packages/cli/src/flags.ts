/**
 * Command-line values turned into options: numbers checked, and the sandbox
 * flags that `gust dev` and `gust worker` share.
 */
import { ConfigError } from "@gust/protocol";
import { SandboxCpuModels } from "@gust/worker";
import type { SandboxCpuModel, WorkerOptions } from "@gust/worker";

export function integer(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) {
    throw new ConfigError(`--${flag} must be a non-negative integer, got ${value}`);
  }
  return parsed;
}

export interface SandboxFlags {
  "max-sandboxes"?: string | undefined;
  pool?: string | undefined;
  "dispatch-slots"?: string | undefined;
  "trust-tenants"?: boolean | undefined;
  "no-jail"?: boolean | undefined;
  "no-egress"?: boolean | undefined;
  "deny-cidr"?: string[] | undefined;
  "sandbox-cpu"?: string | undefined;
}

/**
 * `--max-sandboxes`, `--pool`, `--dispatch-slots`, `--trust-tenants` and
 * `--no-jail`, `--no-egress`, `--deny-cidr` and `--sandbox-cpu` as a worker's options; absent
 * ones keep their defaults.
 */
export function sandboxOptions(values: SandboxFlags): WorkerOptions {
  const maxSandboxes = integer(values["max-sandboxes"], "max-sandboxes");
  const pool = integer(values.pool, "pool");
  const dispatchSlots = integer(values["dispatch-slots"], "dispatch-slots");
  return {
    ...(maxSandboxes === undefined ? {} : { maxSandboxes }),
    ...(pool === undefined ? {} : { preinitializedPoolSize: pool }),
    ...(dispatchSlots === undefined ? {} : { dispatchSlots }),
    ...(values["trust-tenants"] === true ? { trustTenants: true } : {}),
    ...(values["no-jail"] === true ? { jail: false } : {}),
    ...(values["no-egress"] === true ? { egress: false } : {}),
    ...(values["deny-cidr"] === undefined || values["deny-cidr"].length === 0
      ? {}
      : { denyCidrs: values["deny-cidr"] }),
    ...(values["sandbox-cpu"] === undefined
      ? {}
      : { sandboxCpu: sandboxCpuModel(values["sandbox-cpu"]) }),
  };
}

function sandboxCpuModel(value: string): SandboxCpuModel {
  const model = SandboxCpuModels.find((name) => name === value);
  if (model === undefined)
    throw new ConfigError(`--sandbox-cpu must be ${SandboxCpuModels.join(" or ")}, got ${value}`);
  return model;
}
