import { Module } from '@nestjs/common';
import { EventPartitionsService } from './event-partitions.service';

/** The monthly partitions of the raw events: made ahead of time, dropped past EVENT_RETENTION_DAYS. */
@Module({
  providers: [EventPartitionsService],
  exports: [EventPartitionsService],
})
export class PartitionsModule {}
