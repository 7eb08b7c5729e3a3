export * from './mailjet-body.parser';
export * from './mailjet-event.types';
export * from './mailjet-event.validator';
