// Connecting to Paved: the endpoint and token (from the options, the
// environment or the CLI's stored login), TLS, retries on UNAVAILABLE with
// backoff, a typed client per service whose errors are PavedErrors, and the
// common flows (deploy and follow the rollout, tokens, secrets, audit log).

import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client as ServiceClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { AuditService, LogEntrySchema, type LogEntry } from "./gen/paved/audit/v1/audit_pb.js";
import { CanaryAnalyzerService } from "./gen/paved/canary_analyzer/v1/canary_analyzer_pb.js";
import { CostSchedulerService } from "./gen/paved/cost_scheduler/v1/cost_scheduler_pb.js";
import {
  ProvisionerService,
  RolloutState,
  type ApplyWorkloadResponse,
  type Rollout,
} from "./gen/paved/provisioner/v1/provisioner_pb.js";
import type { WorkloadSpecSchema } from "./gen/paved/provisioner/v1/spec_pb.js";
import { SecretsBrokerService, type IssueTokenResponse, type Secret } from "./gen/paved/secrets_broker/v1/secrets_broker_pb.js";
import { PavedError, toPavedError } from "./errors.js";

export const DEFAULT_ENDPOINT = "127.0.0.1:7400";

export interface ClientOptions {
  /** Default: PAVED_ENDPOINT, else 127.0.0.1:7400; `https://` uses TLS. */
  endpoint?: string;
  /** Default: PAVED_TOKEN, else the `paved` CLI's stored login for the endpoint. */
  token?: string;
  /** TLS: the trust bundle (default: the file in PAVED_CA_BUNDLE), and for mTLS a client certificate and key (PEM). */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The deadline of every call; default 30 s. Watches the SDK runs have none; a stream called directly takes `{ timeoutMs: 0 }` to run longer. */
  timeoutMs?: number;
  /** Attempts of a call refused with UNAVAILABLE; default 5. */
  attempts?: number;
}

const ENDED = new Set([RolloutState.PROMOTED, RolloutState.ROLLED_BACK, RolloutState.ABORTED, RolloutState.SUPERSEDED]);

/** The token the `paved` CLI stored for `endpoint`; empty when none. */
export function storedToken(endpoint: string): string {
  const env = (name: string) => process.env[name] || undefined;
  const base =
    env("PAVED_CONFIG_DIR") ?? (env("XDG_CONFIG_HOME") ? join(env("XDG_CONFIG_HOME")!, "paved") : join(homedir(), ".config", "paved"));
  try {
    const stored = JSON.parse(readFileSync(join(base, "credentials.json"), "utf8"));
    return typeof stored?.[endpoint] === "string" ? stored[endpoint] : "";
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw e;
  }
}

/** `authorization: Bearer <token>` on every call. */
function bearer(token: string): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/** Methods that only read: safe to repeat. */
const READS = ["Get", "List", "Query", "Explain", "Plan", "Introspect"];
/** Writes that carry a request id the server deduplicates on. */
const DEDUPLICATED = new Set(["paved.provisioner.v1.ProvisionerService/ApplyWorkload", "paved.provisioner.v1.ProvisionerService/OpenPreview"]);

/**
 * A unary call refused with UNAVAILABLE (a server restarting, a connection
 * not yet up) is tried again, backing off from 0.1 s to 2 s — when it is
 * safe to repeat: it only reads, or carries a request id. The server may
 * have acted on a write before its connection was lost, and issuing a
 * token or a credential twice is not harmless. Streams are not retried:
 * their messages may have been seen.
 */
function retries(attempts: number): Interceptor {
  return (next) => async (req) => {
    const safe = READS.some((p) => req.method.name.startsWith(p)) || DEDUPLICATED.has(`${req.service.typeName}/${req.method.name}`);
    for (let attempt = 1, wait = 100; ; attempt++, wait = Math.min(wait * 2, 2000)) {
      try {
        return await next(req);
      } catch (e) {
        const unavailable = ConnectError.from(e).code === Code.Unavailable;
        if (req.stream || !safe || !unavailable || attempt >= attempts || req.signal.aborted) throw e;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  };
}

/**
 * The platform's servers present certificates naming a SPIFFE id
 * (`spiffe://paved/platform/<service>`) and no host name: they are checked
 * against the trust bundle, and their identity must be the platform's.
 */
function platformIdentity(_host: string, cert: { subjectaltname?: string }): Error | undefined {
  const names = (cert.subjectaltname ?? "").split(",").map((n) => n.trim());
  return names.some((n) => n.startsWith("URI:spiffe://paved/platform/"))
    ? undefined
    : new Error(`the server's certificate names no Paved platform service (${cert.subjectaltname ?? "no names"})`);
}

/** Every error, unary or in a stream, as a PavedError. */
const pavedErrors: Interceptor = (next) => async (req) => {
  let res;
  try {
    res = await next(req);
  } catch (e) {
    throw toPavedError(e);
  }
  if (!res.stream) return res;
  const messages = res.message;
  return {
    ...res,
    message: (async function* () {
      try {
        yield* messages;
      } catch (e) {
        throw toPavedError(e);
      }
    })(),
  };
};

/** What `deploy` did: the apply's answer and the rollout as it ended (none when nothing changed). */
export class Deployment {
  constructor(
    readonly applied: ApplyWorkloadResponse,
    readonly rollout: Rollout | undefined,
  ) {}

  /** True when the new revision took all traffic (or nothing changed). */
  get promoted(): boolean {
    return this.rollout === undefined || this.rollout.state === RolloutState.PROMOTED;
  }

  /** `promoted`, `rolled_back`, `aborted`, `superseded`, `running`, … or `unchanged`. */
  get state(): string {
    return this.rollout === undefined ? "unchanged" : RolloutState[this.rollout.state].toLowerCase();
  }
}

export interface AuditEntry {
  index: bigint;
  entry: LogEntry;
  /** The event's type, e.g. `paved.provisioner.v1.rollout.transitioned`. */
  type: string;
}

/** A connection to Paved, with a client per service. */
export class Client {
  readonly endpoint: string;
  readonly provisioner: ServiceClient<typeof ProvisionerService>;
  readonly secretsBroker: ServiceClient<typeof SecretsBrokerService>;
  readonly canaryAnalyzer: ServiceClient<typeof CanaryAnalyzerService>;
  readonly costScheduler: ServiceClient<typeof CostSchedulerService>;
  readonly audit: ServiceClient<typeof AuditService>;

  constructor(options: ClientOptions = {}) {
    const endpoint = options.endpoint || process.env.PAVED_ENDPOINT || DEFAULT_ENDPOINT;
    this.endpoint = endpoint;
    const token = options.token ?? (process.env.PAVED_TOKEN || storedToken(endpoint));
    const baseUrl = endpoint.includes("://") ? endpoint : `http://${endpoint}`;
    const tls = baseUrl.startsWith("https://");
    const ca = options.ca ?? (tls && process.env.PAVED_CA_BUNDLE ? readFileSync(process.env.PAVED_CA_BUNDLE) : undefined);
    const interceptors = [pavedErrors, retries(options.attempts ?? 5), ...(token ? [bearer(token)] : [])];
    const transport = createGrpcTransport({
      baseUrl,
      interceptors,
      defaultTimeoutMs: options.timeoutMs ?? 30_000,
      nodeOptions: tls ? { ca, cert: options.cert, key: options.key, checkServerIdentity: platformIdentity } : {},
    });
    this.provisioner = createClient(ProvisionerService, transport);
    this.secretsBroker = createClient(SecretsBrokerService, transport);
    this.canaryAnalyzer = createClient(CanaryAnalyzerService, transport);
    this.costScheduler = createClient(CostSchedulerService, transport);
    this.audit = createClient(AuditService, transport);
  }

  /**
   * Applies a spec (the text of a paved.yaml, or a `WorkloadSpec` built in
   * code) to `environment` and, unless
   * `follow` is false, watches its rollout to its end, calling `onChange`
   * with each change. A rollback is a result (`promoted` is false), not an
   * exception: the platform did what it should.
   */
  async deploy(
    spec: string | MessageInitShape<typeof WorkloadSpecSchema>,
    environment: string,
    options: { follow?: boolean; onChange?: (rollout: Rollout) => void } = {},
  ): Promise<Deployment> {
    const form = typeof spec === "string" ? { specYaml: spec } : { spec };
    const applied = await this.provisioner.applyWorkload({ environment, ...form, requestId: randomUUID() });
    if (!applied.changed || applied.rollout === undefined) return new Deployment(applied, undefined);
    if (options.follow === false) return new Deployment(applied, applied.rollout);
    return new Deployment(applied, await this.followRollout(applied.rollout.id, options.onChange));
  }

  /** Watches a rollout until it has ended; returns it as it ended. A watch cut short (the platform restarting) is taken up again. */
  async followRollout(id: string, onChange?: (rollout: Rollout) => void): Promise<Rollout> {
    const transient = new Set([Code.Unavailable, Code.Internal, Code.Unknown]);
    for (let wait = 100; ; wait = Math.min(wait * 2, 2000)) {
      try {
        for await (const change of this.provisioner.watchRollout({ id }, { timeoutMs: 0 })) {
          if (change.rollout === undefined) continue;
          onChange?.(change.rollout);
          if (ENDED.has(change.rollout.state)) return change.rollout;
        }
      } catch (e) {
        if (!transient.has(toPavedError(e).code)) throw e;
      }
      // The watch ended before the rollout did: read where it stands.
      const rollout = await this.provisioner.getRollout({ id }).then(
        (r) => r.rollout,
        (e) => {
          if (toPavedError(e).code !== Code.Unavailable) throw e;
          return undefined;
        },
      );
      if (rollout !== undefined && ENDED.has(rollout.state)) return rollout;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** A token for `subject` with `scopes` (or a `role`); `ttlSeconds` default 15 min. */
  async issueToken(
    subject: string,
    scopes: string[] = [],
    options: { role?: string; environment?: string; workloads?: string; ttlSeconds?: number; audience?: string } = {},
  ): Promise<IssueTokenResponse> {
    const { ttlSeconds, ...rest } = options;
    const ttl = ttlSeconds === undefined ? undefined : create(DurationSchema, { seconds: BigInt(ttlSeconds) });
    return this.secretsBroker.issueToken({ subject, scopes, ttl, ...rest });
  }

  async revokeToken(tokenId: string): Promise<void> {
    await this.secretsBroker.revokeToken({ target: { case: "tokenId", value: tokenId } });
  }

  /** A secret at `version` (0: the latest). */
  async getSecret(path: string, version = 0): Promise<Secret> {
    const { secret } = await this.secretsBroker.getSecret({ path, version });
    if (secret === undefined) throw new PavedError(new ConnectError(`the broker answered no secret for ${path}`, Code.Internal));
    return secret;
  }

  /** The secret now, then each new version as it is written. */
  async *watchSecret(path: string, signal?: AbortSignal): AsyncGenerator<Secret> {
    for await (const change of this.secretsBroker.watchSecret({ path }, { signal, timeoutMs: 0 })) {
      if (change.secret !== undefined) yield change.secret;
    }
  }

  /** Every entry of a workload's chain (or an actor's), oldest first, all pages read. */
  async queryAudit(query: { workload?: string; environment?: string; actor?: string; since?: Date }): Promise<AuditEntry[]> {
    const entries: AuditEntry[] = [];
    const since = query.since === undefined ? undefined : timestampFromDate(query.since);
    for (let pageToken = ""; ; ) {
      const page = await this.audit.queryLog({ ...query, since, pageSize: 1000, pageToken });
      for (const proven of page.entries) {
        const entry = fromBinary(LogEntrySchema, proven.entry);
        entries.push({ index: proven.index, entry, type: entry.event?.type ?? "" });
      }
      pageToken = page.nextPageToken;
      if (!pageToken) return entries;
    }
  }
}
