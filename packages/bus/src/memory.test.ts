import { createMemoryInfrastructure } from "./memory-infrastructure.js";
import { describeInfrastructureConformance } from "./conformance.js";
import { silentLogger } from "./test-logger.js";

describeInfrastructureConformance("in-memory", () => {
  // One process shares one state: every "connection" is the same object.
  const infrastructure = createMemoryInfrastructure({ logger: silentLogger() });
  return Promise.resolve({
    connect: () => Promise.resolve(infrastructure),
    dispose: () => infrastructure.close(),
  });
});
