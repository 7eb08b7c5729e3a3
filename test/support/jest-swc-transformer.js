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
// Not through require(): some of these modules declare their own `const require`.
const FILE_URL = '("file://" + __filename)';
const toCommonJs = (source) => source.replace(IMPORT_META_URL, FILE_URL);

module.exports = {
  ...swc,
  process(source, filename, options) {
    return swc.process(toCommonJs(source), filename, options);
  },
  getCacheKey(source, filename, options) {
    return swc.getCacheKey(toCommonJs(source), filename, options);
  },
};
