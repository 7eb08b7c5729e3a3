export * from './bounded-text';
export * from './with-timeout';
export * from './fetch-failure';
export * from './authorization';
