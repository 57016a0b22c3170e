/** The bootstrap's own version; a runtime version (e.g. nodejs20 v3) pins one. */
export const RUNTIME_NODE_VERSION = "1.0.0";
