import { Module } from '@nestjs/common';
import { EventEnqueuer } from './event-enqueuer.service';
import { OutboxRecoveryService } from './outbox-recovery.service';

/** Moves committed events into the queue: right after ingest, on requeue, and when Redis was down. */
@Module({
  providers: [EventEnqueuer, OutboxRecoveryService],
  exports: [EventEnqueuer, OutboxRecoveryService],
})
export class OutboxModule {}
