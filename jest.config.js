// Unit tests sit next to the code (*.spec.ts); the static check of the Docker files, which has no
// code to sit next to, is test/docker-image.spec.ts. End-to-end tests against real PostgreSQL and
// Redis live in test/ (*.e2e-spec.ts). SWC compiles both, and the ES modules of @nestjs/*
// (TypeScript itself is checked by `npm run typecheck`).
const fs = require('node:fs');
const path = require('node:path');

/** Packages published as ES modules only (all of @nestjs/* in v12, cookie, ...): Jest must compile them. */
function esmOnlyPackages() {
  const root = path.join(__dirname, 'node_modules');
  const names = fs.readdirSync(root).flatMap((name) =>
    name.startsWith('@') ? fs.readdirSync(path.join(root, name)).map((sub) => `${name}/${sub}`) : [name],
  );
  return names.filter((name) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(root, name, 'package.json'), 'utf8')).type === 'module';
    } catch {
      return false;
    }
  });
}
const escape = (name) => name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const common = {
  rootDir: __dirname,
  transform: { '\\.[jt]s$': '<rootDir>/test/support/jest-swc-transformer.js' },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnlyPackages().map(escape).join('|')})/)`],
  moduleNameMapper: { '^@app/([a-z-]+)$': '<rootDir>/libs/$1/src' },
  testEnvironment: 'node',
};

module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test'],
      // `.e2e-spec.ts` and `.fault-spec.ts` do not match: their projects need PostgreSQL and Redis.
      testRegex: '\\.spec\\.ts$',
    },
    {
      ...common,
      displayName: 'e2e',
      roots: ['<rootDir>/test'],
      testRegex: '\\.e2e-spec\\.ts$',
      globalSetup: '<rootDir>/test/support/global-setup.ts',
    },
    {
      ...common,
      displayName: 'faults',
      roots: ['<rootDir>/test/faults'],
      testRegex: '\\.fault-spec\\.ts$',
      globalSetup: '<rootDir>/test/support/global-setup.ts',
    },
  ],
  testTimeout: 60000,
};
