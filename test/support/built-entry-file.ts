import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const root = path.join(__dirname, '../..');

/**
 * Where `nest build <app>` writes the app's main.js, relative to the repository: tsc puts each file
 * at outDir + its path under rootDir, both taken from the app's tsconfig (which extends the root one).
 */
export function builtEntryFile(app: string): string {
  const nestCli = JSON.parse(readFileSync(path.join(root, 'nest-cli.json'), 'utf8'));
  const tsconfigPath = nestCli.projects[app].compilerOptions.tsConfigPath as string;
  const { config } = ts.readConfigFile(path.join(root, tsconfigPath), ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, path.dirname(path.join(root, tsconfigPath)));
  const source = path.join(root, `apps/${app}/src/main.ts`);
  if (!existsSync(source)) throw new Error(`no ${source}`);
  const built = path.join(options.outDir!, path.relative(options.rootDir!, source)).replace(/\.ts$/, '.js');
  return path.relative(root, built).split(path.sep).join('/');
}
