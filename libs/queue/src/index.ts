export * from './event-id-ranges';
export * from './forward-event-job.dto';
export * from './queue.constants';
export * from './queue.module';
export * from './redis-errors';
export * from './redis-connections';
