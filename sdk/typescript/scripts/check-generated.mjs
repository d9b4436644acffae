// Regenerates src/gen into a temporary directory and fails when anything
// differs from what is committed: the stubs must be what proto/ makes.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const files = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
const out = mkdtempSync(join(tmpdir(), "paved-ts-gen-"));
try {
  execFileSync(join(root, "node_modules/.bin/buf"), ["generate", "--template", "buf.gen.yaml", "-o", out], {
    cwd: root,
    stdio: "inherit",
    // buf runs the local protoc-gen-es plugin by name.
    env: { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH}` },
  });
  const fresh = join(out, "src/gen");
  const committed = join(root, "src/gen");
  const want = files(fresh).map((f) => relative(fresh, f)).sort();
  const have = files(committed).map((f) => relative(committed, f)).sort();
  const differ = [...new Set([...want, ...have])].filter(
    (f) => !want.includes(f) || !have.includes(f) || !readFileSync(join(fresh, f)).equals(readFileSync(join(committed, f))),
  );
  if (differ.length > 0) {
    console.error(`generated TypeScript differs from proto/ (run npm run generate in sdk/typescript):\n  ${differ.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`the TypeScript stubs match proto/ (${want.length} files)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
