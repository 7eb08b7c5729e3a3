import { Module } from '@nestjs/common';
import { SegmentMappingModule } from '@app/segment';
import { Destinations } from './destinations.service';
import { Enrichment } from './enrichment.service';
import { SegmentForwardingProcessor } from './segment-forwarding.processor';
import { SegmentForwardingService } from './segment-forwarding.service';

@Module({
  imports: [SegmentMappingModule],
  providers: [Destinations, Enrichment, SegmentForwardingService, SegmentForwardingProcessor],
  exports: [SegmentForwardingService],
})
export class SegmentForwardingModule {}
