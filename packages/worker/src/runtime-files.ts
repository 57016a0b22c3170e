/**
 * The Node.js runtime's files as sandboxes see them: a private copy of
 * @gust/runtime-node's build in the worker's own directory, world-readable,
 * because the package may live where an unprivileged sandbox uid cannot read
 * (e.g. under /root) and Node's permission model must name one directory.
 * Each bootstrap version a runtime version names is installed on its own.
 */
import { chmod, cp, lstat, readdir, rm } from "node:fs/promises";
import path from "node:path";
import {
  bootstrapDir,
  bootstrapEntry,
  nodeBootstrap,
  RUNTIME_NODE_VERSION,
} from "@gust/runtime-node";
import { ConfigError } from "@gust/protocol";

/** Where a Node.js runtime version's files come from. */
export interface NodeRuntimeFiles {
  /** Directory holding the bootstrap and everything it imports. */
  sourceDir: string;
  /** The bootstrap entry, relative to sourceDir (or absolute inside it). */
  entry: string;
  version: string;
}

export function defaultNodeRuntimeFiles(): NodeRuntimeFiles {
  return { sourceDir: bootstrapDir, entry: bootstrapEntry, version: RUNTIME_NODE_VERSION };
}

/** The files of a bootstrap version @gust/runtime-node ships, or undefined. */
export function nodeRuntimeFilesFor(version: string): NodeRuntimeFiles | undefined {
  const bootstrap = nodeBootstrap(version);
  return bootstrap === undefined
    ? undefined
    : { sourceDir: bootstrap.dir, entry: bootstrap.entry, version: bootstrap.version };
}

export interface InstalledRuntime {
  /** LAMBDA_RUNTIME_DIR, readable by every sandbox. */
  dir: string;
  /** The file Node runs. */
  bootstrapFile: string;
  version: string;
}

async function makeWorldReadable(target: string): Promise<void> {
  const stats = await lstat(target);
  if (stats.isSymbolicLink()) return;
  if (stats.isDirectory()) {
    await chmod(target, 0o755);
    for (const name of await readdir(target)) await makeWorldReadable(path.join(target, name));
  } else {
    await chmod(target, stats.mode & 0o111 ? 0o755 : 0o644);
  }
}

/** Copy a runtime into `destDir` (replacing what is there) and name its bootstrap file. */
export async function installNodeRuntime(
  files: NodeRuntimeFiles,
  destDir: string,
): Promise<InstalledRuntime> {
  const source = path.resolve(files.sourceDir);
  const entry = path.isAbsolute(files.entry) ? path.relative(source, files.entry) : files.entry;
  if (entry.startsWith("..") || path.isAbsolute(entry)) {
    throw new ConfigError(`runtime entry ${files.entry} is outside ${source}`);
  }
  await rm(destDir, { recursive: true, force: true });
  await cp(source, destDir, { recursive: true, dereference: true });
  await makeWorldReadable(destDir);
  const bootstrapFile = path.join(destDir, entry);
  try {
    await lstat(bootstrapFile);
  } catch (cause) {
    throw new ConfigError(`runtime bootstrap ${bootstrapFile} does not exist`, { cause });
  }
  return { dir: destDir, bootstrapFile, version: files.version };
}
