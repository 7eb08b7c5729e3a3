import { Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { SegmentClient } from './segment.client';
import { TrackCallFactory } from './track-call.factory';

const FLUSH_TIMEOUT_MS = 10_000;

@Injectable()
class SegmentClientCloser implements OnApplicationShutdown {
  constructor(@Inject(SegmentClient) private readonly segment: SegmentClient) {}

  async onApplicationShutdown(): Promise<void> {
    await this.segment.close(FLUSH_TIMEOUT_MS);
  }
}

/** Mapping only: what the api needs to show the Segment call of an event. */
@Module({ providers: [TrackCallFactory], exports: [TrackCallFactory] })
export class SegmentMappingModule {}

/** Mapping and delivery: the worker. */
@Module({
  imports: [SegmentMappingModule],
  providers: [
    {
      provide: SegmentClient,
      inject: [AppConfig],
      useFactory: (config: AppConfig) =>
        new SegmentClient({ ...config.segment, maxBatchSize: Math.min(config.workerConcurrency, 100) }),
    },
    SegmentClientCloser,
  ],
  exports: [SegmentClient, SegmentMappingModule],
})
export class SegmentModule {}
