export * from './mailjet-api.error';
export * from './mailjet-rest.client';
export * from './mailjet-rest.types';
export * from './history-events.mapper';
