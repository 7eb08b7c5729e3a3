import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig } from './app-config';
import { loadEnvironment, RequiredVariable } from './environment';

/**
 * Reads the process environment (the only place that does), with optional overrides for tests.
 * Throws a `ConfigurationError` naming every missing or malformed variable.
 */
export function configFromEnvironment(
  required: readonly RequiredVariable[],
  overrides: Record<string, string | undefined> = {},
): AppConfig {
  return new AppConfig(loadEnvironment({ ...process.env, ...overrides }, required));
}

@Module({})
export class ConfigModule {
  /** The configuration is loaded before the module graph, so that a bad one stops the process in one line. */
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ConfigModule,
      global: true,
      providers: [{ provide: AppConfig, useValue: config }],
      exports: [AppConfig],
    };
  }
}
