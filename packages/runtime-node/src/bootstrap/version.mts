/** The version of bootstrap.mjs, this package's first bootstrap; `nodeBootstraps` lists them all. */
export const RUNTIME_NODE_VERSION = "1.0.0";
