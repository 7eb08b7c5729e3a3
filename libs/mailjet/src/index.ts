export { jsonNestingDepth, parseJsonExact } from './exact-json.parser';
export * from './mailjet-body.parser';
export * from './mailjet-event.types';
export * from './mailjet-event.validator';
