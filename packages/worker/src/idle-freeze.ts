/**
 * Lambda freezes an execution environment between invocations: whatever a
 * handler left running (a timer, a spinning child, a background upload)
 * stops until the next invocation arrives. A sandbox's control group is
 * frozen once it has been idle for IDLE_FREEZE_MS and thawed before its next
 * invocation is handed over. The short delay keeps back-to-back invocations
 * free of the freeze's cost (a few writes to the cgroup filesystem) and lets
 * the runtime's last output and its next poll arrive first.
 */
import type { Logger } from "@gust/telemetry";
import type { SandboxCgroup } from "./cgroup/index.js";

/** How long a sandbox idles before it is frozen. */
export const IDLE_FREEZE_MS = 100;

type State = "running" | "freezing" | "frozen";

export class IdleFreezer {
  readonly #group: SandboxCgroup;
  readonly #logger: Logger;
  readonly #delayMs: number;
  #state: State = "running";
  #timer: NodeJS.Timeout | undefined;
  #freezing: Promise<void> | undefined;
  #closed = false;

  constructor(group: SandboxCgroup, logger: Logger, delayMs = IDLE_FREEZE_MS) {
    this.#group = group;
    this.#logger = logger;
    this.#delayMs = delayMs;
  }

  /** The sandbox has nothing to do: freeze it unless work arrives first. */
  idle(): void {
    if (this.#closed || this.#state !== "running") return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#freeze(), this.#delayMs);
    this.#timer.unref();
  }

  /** Work arrives: cancel a pending freeze, and thaw the sandbox if it was frozen. */
  async wake(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#state === "freezing") await this.#freezing;
    if (this.#state !== "frozen") return;
    await this.#group.thaw();
    this.#state = "running";
  }

  /** No more freezing (the sandbox is being disposed of; its group's kill thaws it). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #freeze(): void {
    if (this.#closed || this.#state !== "running") return;
    this.#state = "freezing";
    this.#freezing = this.#group.freeze().then(
      () => {
        this.#state = "frozen";
      },
      async (error: unknown) => {
        this.#logger.warn("could not freeze an idle sandbox", { error });
        await this.#group.thaw().catch(() => undefined);
        this.#state = "running";
      },
    );
  }
}
