// NestJS 12 ships its packages as ES modules, which Jest's CommonJS runtime cannot load on
// Node 20 (Node itself can, through require(esm)). Jest compiles them, like our TypeScript,
// to CommonJS with SWC; `import.meta.url`, which CommonJS lacks, becomes the file's URL.
const { createTransformer } = require('@swc/jest');

const swc = createTransformer({
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2022',
    keepClassNames: true,
  },
  module: { type: 'commonjs' },
});

const IMPORT_META_URL = /\bimport\.meta\.url\b/g;

module.exports = {
  ...swc,
  process(source, filename, options) {
    const cjsSource = source.replace(IMPORT_META_URL, 'require("node:url").pathToFileURL(__filename).href');
    return swc.process(cjsSource, filename, options);
  },
  getCacheKey(source, filename, options) {
    return swc.getCacheKey(source.replace(IMPORT_META_URL, 'require("node:url").pathToFileURL(__filename).href'), filename, options);
  },
};
