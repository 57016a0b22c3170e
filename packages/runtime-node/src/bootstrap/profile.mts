/**
 * What differs between the bootstrap versions this directory holds. A
 * runtime version (e.g. `nodejs20.x:2.0.0`) names one of them; the rest of
 * the runtime is shared, so two versions differ exactly where their
 * profiles do.
 */
export interface RuntimeProfile {
  /** The bootstrap's version, as the runtime's User-Agent reports it. */
  version: string;
  /**
   * Callback-style handlers, `(event, context, callback)`, and the context's
   * succeed/fail/done and callbackWaitsForEmptyEventLoop. Without them, as in
   * Lambda's nodejs24.x, a handler that declares a third parameter fails to
   * initialize with Runtime.CallbackHandlerDeprecated, the context offers
   * none of those members, and what a handler returns (awaited when it is a
   * promise) is its result.
   */
  callbacks: boolean;
}

/** The original runtime: every handler style Lambda's Node.js 20 runtime accepts. */
export const PROFILE_1_0_0: RuntimeProfile = { version: "1.0.0", callbacks: true };

/** Without callback handlers, the change Lambda made for Node.js 24. */
export const PROFILE_2_0_0: RuntimeProfile = { version: "2.0.0", callbacks: false };
