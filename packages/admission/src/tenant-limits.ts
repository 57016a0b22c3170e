/**
 * A tenant's configured limits: its maximum concurrency M and the
 * concurrency its functions reserve, with Lambda's rules
 * (PutFunctionConcurrency / GetFunctionConcurrency / DeleteFunctionConcurrency):
 * a reservation is a whole number ≥ 0, 0 stops the function from running,
 * and the reservations together must leave at least `minUnreserved` of M for
 * the tenant's other functions. A reserved function runs only within its
 * reservation; the others share what is left.
 */
import { ConfigError, LambdaErrors } from "@gust/protocol";

/** GetAccountSettings' AccountLimit members this controller knows. */
export interface AccountConcurrency {
  concurrentExecutions: number;
  unreservedConcurrentExecutions: number;
}

export function checkMaxConcurrency(tenantId: string, maxConcurrency: number): number {
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) {
    throw new ConfigError(
      `tenant ${JSON.stringify(tenantId)}: maxConcurrency must be a positive integer, got ${String(maxConcurrency)}`,
    );
  }
  return maxConcurrency;
}

export class TenantLimits {
  private readonly reservations = new Map<string, number>();
  private reservedTotal = 0;

  constructor(
    readonly tenantId: string,
    private max: number,
    private readonly minUnreserved: number,
  ) {}

  get maxConcurrency(): number {
    return this.max;
  }

  /** Lowering M below what is reserved is allowed; the unreserved pool then shrinks to what is left, possibly 0. */
  setMaxConcurrency(maxConcurrency: number): void {
    this.max = checkMaxConcurrency(this.tenantId, maxConcurrency);
  }

  get reserved(): number {
    return this.reservedTotal;
  }

  get unreserved(): number {
    return Math.max(0, this.max - this.reservedTotal);
  }

  reservation(functionName: string): number | undefined {
    return this.reservations.get(functionName);
  }

  reservedFunctions(): IterableIterator<[string, number]> {
    return this.reservations.entries();
  }

  /**
   * Set (a number) or remove (undefined) a function's reservation. Throws
   * Lambda's InvalidParameterValueException for a bad value or one that
   * would leave too little unreserved; nothing changes then.
   */
  setReservation(functionName: string, reserved: number | undefined): void {
    const previous = this.reservations.get(functionName) ?? 0;
    if (reserved === undefined) {
      if (this.reservations.delete(functionName)) this.reservedTotal -= previous;
      return;
    }
    if (!Number.isInteger(reserved) || reserved < 0) {
      throw LambdaErrors.invalidParameter(
        `ReservedConcurrentExecutions must be a whole number of at least 0, got ${String(reserved)}.`,
      );
    }
    const total = this.reservedTotal - previous + reserved;
    if (this.max - total < this.minUnreserved) {
      throw LambdaErrors.invalidParameter(
        "Specified ReservedConcurrentExecutions for function decreases account's " +
          `UnreservedConcurrentExecution below its minimum value of [${this.minUnreserved}].`,
      );
    }
    this.reservations.set(functionName, reserved);
    this.reservedTotal = total;
  }

  accountConcurrency(): AccountConcurrency {
    return { concurrentExecutions: this.max, unreservedConcurrentExecutions: this.unreserved };
  }
}
