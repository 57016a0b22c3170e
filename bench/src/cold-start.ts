/**
 * Cold starts: the first invocation of a new function on `gust dev`, with a
 * pre-initialized sandbox waiting (Node started, bootstrap loaded, no
 * function yet) and with none, so the sandbox is spawned for it.
 */
import { HANDLERS, createFunction, invokeOnce } from "./handlers.js";
import { startDevTarget } from "./targets.js";

/** How long the pool gets to refill between samples. */
const REFILL_MS = 1500;

export async function coldStarts(pool: number, samples: number): Promise<number[]> {
  const target = await startDevTarget({ pool, maxSandboxes: 64 });
  try {
    const took: number[] = [];
    for (let i = 0; i < samples; i++) {
      await createFunction(target, `cold${i}`, HANDLERS.noop);
      // Let the pool refill, so each first invocation finds a pre-initialized sandbox.
      await new Promise((resolve) => setTimeout(resolve, REFILL_MS));
      took.push((await invokeOnce(target, `cold${i}`)).ms);
    }
    return took;
  } finally {
    await target.stop();
  }
}
