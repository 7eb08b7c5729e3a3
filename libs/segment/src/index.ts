export * from './segment-track.mapper';
export * from './segment-track.types';
export * from './segment.client';
export * from './segment.module';
export * from './track-call.factory';
