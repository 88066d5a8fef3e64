// Builds @jobs/client from the client's sources in src/client (and what they import) into
// packages/client/dist: dist/cjs (CommonJS) and dist/esm (ES modules), each with its type
// declarations. `npm pack` runs it (prepack); `npm run client:build` at the root does too.
//
// TypeScript compiles the sources twice with the compiler API; for the ES build a small transform
// adds the `.js` that Node's ESM loader needs to each relative import (the sources, compiled as
// CommonJS everywhere else, leave it out). Only what the entry point reaches is written: the
// client's JavaScript and the error catalog at run time, and the declarations of the contract's
// schemas its types are read from. A run-time import of any package, or a declaration importing
// any package but zod, fails the build: that is what keeps the package's dependencies to zod.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const root = path.resolve(packageDir, '..', '..');
const srcDir = path.join(root, 'src');
const entry = path.join(srcDir, 'client', 'index.ts');
const distDir = path.join(packageDir, 'dist');
const TYPE_DEPENDENCIES = new Set(['zod']);

const require = createRequire(path.join(root, 'package.json'));
let ts;
try {
  ts = require('typescript');
} catch {
  fail('TypeScript is not installed: run `npm install` at the repository root first');
}

function fail(message) {
  process.stderr.write(`@jobs/client build: ${message}\n`);
  process.exit(1);
}

function checkDependencies() {
  const rootDeps = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).dependencies ?? {};
  const ownDeps = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')).dependencies ?? {};
  for (const name of TYPE_DEPENDENCIES) {
    if (ownDeps[name] !== rootDeps[name]) fail(`packages/client/package.json wants ${name} ${ownDeps[name]}, the service ${rootDeps[name]}: make them equal`);
  }
}

/** The service's compiler options, made to emit one format into a fresh directory. */
function compilerOptions(format) {
  const config = ts.getParsedCommandLineOfConfigFile(path.join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')) });
  return {
    ...config.options,
    rootDir: srcDir,
    outDir: path.join(distDir, format),
    module: format === 'esm' ? ts.ModuleKind.ES2022 : ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    declaration: true,
    noEmit: false,
    sourceMap: false,
    declarationMap: false,
    incremental: false,
    tsBuildInfoFile: undefined,
    // Neither Node's nor Jest's globals: the client needs only fetch and friends (lib DOM).
    types: [],
  };
}

function isRelative(specifier) {
  return specifier.startsWith('./') || specifier.startsWith('../');
}

/** `./errors` → `./errors.js` (or `./dir/index.js`), judged by the source file the import is in. */
function withJsExtension(specifier, fromSource) {
  if (!isRelative(specifier) || /\.[cm]?js$/.test(specifier)) return specifier;
  const target = path.resolve(path.dirname(fromSource), specifier);
  if (existsSync(`${target}.ts`)) return `${specifier}.js`;
  if (existsSync(path.join(target, 'index.ts'))) return `${specifier}/index.js`;
  fail(`cannot resolve ${specifier} from ${path.relative(root, fromSource)}`);
}

/** Rewrites relative module specifiers of imports, exports and `import("...")` types. */
function addJsExtensions(context) {
  const { factory } = context;
  return (sourceFile) => {
    const rewrite = (literal) => factory.createStringLiteral(withJsExtension(literal.text, sourceFile.fileName));
    const visit = (node) => {
      if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
        return factory.updateImportDeclaration(node, node.modifiers, node.importClause, rewrite(node.moduleSpecifier), node.attributes);
      }
      if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        return factory.updateExportDeclaration(node, node.modifiers, node.isTypeOnly, node.exportClause, rewrite(node.moduleSpecifier), node.attributes);
      }
      if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
        return factory.updateImportTypeNode(node, factory.updateLiteralTypeNode(node.argument, rewrite(node.argument.literal)), node.attributes, node.qualifier, node.typeArguments, node.isTypeOf);
      }
      return ts.visitEachChild(node, visit, context);
    };
    return ts.visitNode(sourceFile, visit);
  };
}

/**
 * Compiles one format; returns every emitted file by absolute path. Type errors are looked for in
 * the first format only: the sources and options are the same but for the module kind.
 */
function compile(format, { check }) {
  const options = compilerOptions(format);
  const program = ts.createProgram({ rootNames: [entry], options });
  const diagnostics = check ? ts.getPreEmitDiagnostics(program) : program.getSyntacticDiagnostics();
  if (diagnostics.length > 0) {
    const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' };
    fail((process.stderr.isTTY ? ts.formatDiagnosticsWithColorAndContext : ts.formatDiagnostics)(diagnostics, host));
  }
  const outputs = new Map();
  const transformers = format === 'esm' ? { after: [addJsExtensions], afterDeclarations: [addJsExtensions] } : {};
  const result = program.emit(undefined, (fileName, text) => outputs.set(path.resolve(fileName), text), undefined, false, transformers);
  if (result.emitSkipped) fail(`the ${format} build emitted nothing`);
  return { outputs, outDir: options.outDir };
}

/** The emitted file a relative specifier names: `./x`, `./x.js` → x.js (or x.d.ts for declarations). */
function resolveOutput(outputs, fromFile, specifier, declarations) {
  const base = path.resolve(path.dirname(fromFile), specifier.replace(/\.js$/, ''));
  const candidates = declarations ? [`${base}.d.ts`, path.join(base, 'index.d.ts')] : [`${base}.js`, path.join(base, 'index.js')];
  const found = candidates.find((candidate) => outputs.has(candidate));
  if (!found) fail(`${path.relative(distDir, fromFile)} imports ${specifier}, which the build did not emit`);
  return found;
}

/** The files the entry reaches through its imports; a package import must be an allowed one. */
function reachable(outputs, start, declarations) {
  const seen = new Set();
  const pending = [start];
  while (pending.length > 0) {
    const file = pending.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    for (const { fileName: specifier } of ts.preProcessFile(outputs.get(file), true, true).importedFiles) {
      if (isRelative(specifier)) {
        pending.push(resolveOutput(outputs, file, specifier, declarations));
      } else if (!declarations || !TYPE_DEPENDENCIES.has(specifier)) {
        fail(`${path.relative(distDir, file)} imports the package "${specifier}"${declarations ? '' : ' at run time'}: the client may depend on ${[...TYPE_DEPENDENCIES].join(', ')} for types only`);
      }
    }
  }
  return seen;
}

checkDependencies();
rmSync(distDir, { recursive: true, force: true });
const written = {};
for (const format of ['cjs', 'esm']) {
  const { outputs, outDir } = compile(format, { check: format === 'cjs' });
  const entryOut = path.join(outDir, 'client', 'index');
  const files = [...reachable(outputs, `${entryOut}.js`, false), ...reachable(outputs, `${entryOut}.d.ts`, true)];
  for (const file of files) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, outputs.get(file));
  }
  // Each directory says which module system its .js files are, whatever the consumer's package says.
  writeFileSync(path.join(outDir, 'package.json'), `${JSON.stringify({ type: format === 'esm' ? 'module' : 'commonjs' })}\n`);
  written[format] = files.length;
}
process.stderr.write(`@jobs/client built: dist/cjs (${written.cjs} files), dist/esm (${written.esm} files)\n`);
