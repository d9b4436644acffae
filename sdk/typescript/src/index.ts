// The TypeScript client of Paved for Node.js.
//
//   import { Client } from "@paved/sdk";
//   const client = new Client();            // PAVED_ENDPOINT, PAVED_TOKEN or the CLI's login
//   const done = await client.deploy(spec, "dev");
//   console.log(done.state);                // promoted, rolled_back, ...
//
// The generated messages and service descriptors are under
// `@paved/sdk/gen/paved/<service>/v1/<file>_pb`.

export { Client, Deployment, DEFAULT_ENDPOINT, storedToken, type AuditEntry, type ClientOptions } from "./client.js";
export { PavedError, toPavedError, type FieldViolation } from "./errors.js";
export { Code } from "@connectrpc/connect";
