/** The ARN of a runtime version Gust ships, as a fresh install registers it. */
import { BUILT_IN_RUNTIME_VERSIONS, builtInRuntimeVersionRef } from "@gust/protocol";

export function builtInArn(runtime: string, version: string): string {
  const found = BUILT_IN_RUNTIME_VERSIONS.find(
    (candidate) => candidate.runtime === runtime && candidate.version === version,
  );
  if (!found) throw new Error(`no built-in ${runtime}:${version}`);
  return builtInRuntimeVersionRef("us-east-1", found).arn;
}
