export * from './bounded-text';
export * from './with-timeout';
