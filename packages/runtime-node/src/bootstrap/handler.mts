/**
 * Finds and loads the function's handler the way Lambda's Node runtime does.
 * `_HANDLER` is `path/to/module.export.nested`: the module is looked up
 * relative to LAMBDA_TASK_ROOT as .js, .mjs, then .cjs, then as a package of
 * that name; the rest is a property path into its exports.
 * https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html
 */
import { statSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { RuntimeError, RuntimeErrorTypes } from "./errors.mjs";
import type { RuntimeProfile } from "./profile.mjs";

export type Callback = (error?: unknown, result?: unknown) => void;
export type Handler = (event: unknown, context: unknown, callback: Callback) => unknown;

export interface HandlerName {
  /** Directory part, relative to the task root, with its trailing "/" ("" for none). */
  directory: string;
  module: string;
  exportPath: string[];
}

const MODULE_EXTENSIONS = [".js", ".mjs", ".cjs"] as const;

export function parseHandlerName(handler: string): HandlerName {
  if (handler.startsWith("/") || handler.split("/").includes("..")) {
    throw new RuntimeError(
      RuntimeErrorTypes.malformedHandlerName,
      `'../' not allowed in handler path, which is relative to the task root: ${handler}`,
    );
  }
  const slash = handler.lastIndexOf("/");
  const directory = handler.slice(0, slash + 1);
  const base = handler.slice(slash + 1);
  const dot = base.indexOf(".");
  const module = dot === -1 ? "" : base.slice(0, dot);
  const exportPath = dot === -1 ? [] : base.slice(dot + 1).split(".");
  if (module === "" || exportPath.length === 0 || exportPath.some((key) => key === "")) {
    throw new RuntimeError(
      RuntimeErrorTypes.malformedHandlerName,
      `Bad handler ${JSON.stringify(handler)}: expected module.export, e.g. index.handler`,
    );
  }
  return { directory, module, exportPath };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The file to import for a handler, or an ImportModuleError saying where it looked. */
export function resolveHandlerModule(taskRoot: string, name: HandlerName): string {
  const base = resolve(taskRoot, name.directory, name.module);
  for (const extension of MODULE_EXTENSIONS) {
    if (isFile(base + extension)) return base + extension;
  }
  // A package in node_modules (handler "some-package.handler"), as Lambda allows.
  try {
    const require = createRequire(join(taskRoot, "index.js"));
    return require.resolve(name.module, { paths: [taskRoot, resolve(taskRoot, name.directory)] });
  } catch {
    throw new RuntimeError(
      RuntimeErrorTypes.importModule,
      `Error: Cannot find module '${name.directory}${name.module}': no ${name.module}.js, ${name.module}.mjs or ` +
        `${name.module}.cjs in ${resolve(taskRoot, name.directory)}, and no package of that name`,
    );
  }
}

function classifyImportError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (error instanceof SyntaxError) {
    return new RuntimeError(RuntimeErrorTypes.userCodeSyntax, text, { cause: error });
  }
  if (code === "MODULE_NOT_FOUND" || code === "ERR_MODULE_NOT_FOUND") {
    return new RuntimeError(RuntimeErrorTypes.importModule, text, { cause: error });
  }
  // Anything else the module threw while loading reaches the caller as it is.
  return error;
}

function property(target: unknown, key: string): unknown {
  if (target === null || (typeof target !== "object" && typeof target !== "function"))
    return undefined;
  return (target as Record<string, unknown>)[key];
}

/**
 * Walks the export path. A CommonJS module imported as ESM exposes only the
 * names Node could detect statically, so the first key falls back to
 * `default[key]` (module.exports).
 */
export function resolveExport(namespace: unknown, exportPath: readonly string[]): unknown {
  const [first, ...rest] = exportPath;
  if (first === undefined) return undefined;
  let value = property(namespace, first);
  if (value === undefined) value = property(property(namespace, "default"), first);
  for (const key of rest) value = property(value, key);
  return value;
}

/**
 * Loads the handler named by `_HANDLER`; throws the Runtime.* error Lambda
 * would report. A runtime without callbacks refuses a handler that declares
 * a third parameter, as Lambda's nodejs24.x does: it judges by the declared
 * parameters (Function.length), before the handler ever runs.
 */
export async function loadHandler(
  taskRoot: string,
  handler: string,
  profile: RuntimeProfile,
): Promise<Handler> {
  const name = parseHandlerName(handler);
  const file = resolveHandlerModule(taskRoot, name);
  let namespace: unknown;
  try {
    namespace = await import(pathToFileURL(file).href);
  } catch (error) {
    throw classifyImportError(error);
  }
  const value = resolveExport(namespace, name.exportPath);
  if (typeof value !== "function") {
    throw new RuntimeError(
      RuntimeErrorTypes.handlerNotFound,
      `${handler} is undefined or not exported`,
    );
  }
  if (!profile.callbacks && value.length >= 3) {
    throw new RuntimeError(
      RuntimeErrorTypes.callbackHandlerDeprecated,
      `${handler} takes a callback (it declares ${value.length} parameters): this runtime version ` +
        `(bootstrap ${profile.version}) no longer supports callback-based handlers. Use an async ` +
        "handler, (event, context) => result, or pin the function to an earlier runtime version.",
    );
  }
  return value as Handler;
}
