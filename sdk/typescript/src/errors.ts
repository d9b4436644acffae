// Paved's errors: a ConnectError with the rich details every Paved error
// carries decoded — `ErrorInfo` (reason, domain `paved.dev`, metadata such as
// the error id of a cause logged on the server) and `BadRequest` (the fields
// that were wrong and why).

import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

export interface FieldViolation {
  field: string;
  description: string;
}

export class PavedError extends ConnectError {
  // Its `name` stays "ConnectError": ConnectError's `instanceof` goes by
  // that name, and a PavedError is one. Its own `instanceof` goes by the
  // prototype chain instead, or every ConnectError would pass for one.
  static override [Symbol.hasInstance](v: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, v);
  }

  /** `ErrorInfo.reason`, e.g. `INVALID_SPEC`, `MISSING_SCOPE`. */
  readonly reason: string;
  readonly domain: string;
  /** `ErrorInfo.metadata`, e.g. `error_id`, `scope`. */
  readonly info: Record<string, string>;
  readonly fieldViolations: FieldViolation[];

  constructor(from: ConnectError) {
    super(from.rawMessage, from.code, from.metadata, undefined, from.cause);
    // The raw details too, so that findDetails works on this error as well.
    this.details.push(...from.details);
    const [info] = from.findDetails(ErrorInfoSchema);
    const [bad] = from.findDetails(BadRequestSchema);
    this.reason = info?.reason ?? "";
    this.domain = info?.domain ?? "";
    this.info = { ...(info?.metadata ?? {}) };
    this.fieldViolations = (bad?.fieldViolations ?? []).map((v) => ({ field: v.field, description: v.description }));
  }

  /** The code's gRPC name, e.g. `INVALID_ARGUMENT`. */
  get codeName(): string {
    return Code[this.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  }

  /** The names of the bad fields. */
  get fields(): string[] {
    return this.fieldViolations.map((v) => v.field);
  }

  /** Where the server logged the cause, for an operator to look up. */
  get errorId(): string | undefined {
    return this.info["error_id"];
  }
}

/** Any error of a call as a PavedError (its details decoded). */
export function toPavedError(e: unknown): PavedError {
  return e instanceof PavedError ? e : new PavedError(ConnectError.from(e));
}
