import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** Creates (if needed) and migrates the test database with the same runner as `npm run migrate`. */
export default function globalSetup(): void {
  const url = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@localhost:5432/mailjet_segment_test';
  execFileSync(
    process.execPath,
    ['--experimental-wasm-modules', '--disable-warning=ExperimentalWarning', path.join(__dirname, '../../prisma/migrate.mjs')],
    { env: { ...process.env, DATABASE_URL: url }, stdio: 'inherit' },
  );
}
