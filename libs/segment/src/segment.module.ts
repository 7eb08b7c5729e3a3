import { Module } from '@nestjs/common';
import { TrackCallFactory } from './track-call.factory';

/**
 * Mapping: what the api needs to show the Segment call of an event, and the worker to make it.
 * Delivery clients are the worker's, one per source (apps/worker/.../destinations.ts).
 */
@Module({ providers: [TrackCallFactory], exports: [TrackCallFactory] })
export class SegmentMappingModule {}
