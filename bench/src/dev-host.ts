/**
 * Gust's dev mode (startDev, what `gust dev` runs) in a process of its own,
 * for the scale-up measurement, which needs one option `gust dev` has no
 * flag for: the worker's memory for sandboxes. By default a worker hands out
 * 75% of the machine's memory, 128 MB per sandbox at least, which on a
 * 24 GiB machine stops at 144 sandboxes; scaling to 200 needs more.
 *
 * argv[2]: JSON { tenantsFile, maxSandboxes, pool, memoryMb }. Prints its
 * URL on stdout; SIGTERM closes it.
 */
import { startDev } from "@gust/cli";

interface DevHostOptions {
  tenantsFile: string;
  maxSandboxes: number;
  pool: number;
  memoryMb: number;
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? "{}") as DevHostOptions;
  const server = await startDev({
    host: "127.0.0.1",
    port: 0,
    tenantsFile: options.tenantsFile,
    worker: {
      maxSandboxes: options.maxSandboxes,
      preinitializedPoolSize: options.pool,
      memoryMb: options.memoryMb,
    },
  });
  process.stdout.write(`${server.url}\n`);
  const close = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGTERM", close);
  process.once("SIGINT", close);
}

main().catch((error: unknown) => {
  process.stderr.write(`dev host failed: ${String(error)}\n`);
  process.exit(1);
});
