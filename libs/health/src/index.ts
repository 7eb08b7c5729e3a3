export * from './health.module';
export * from './with-timeout';
