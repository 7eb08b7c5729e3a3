import { Module } from '@nestjs/common';
import { SegmentMappingModule } from '@app/segment';
import { Destinations } from './destinations.service';
import { SegmentForwardingProcessor } from './segment-forwarding.processor';
import { SegmentForwardingService } from './segment-forwarding.service';

@Module({
  imports: [SegmentMappingModule],
  providers: [Destinations, SegmentForwardingService, SegmentForwardingProcessor],
  exports: [SegmentForwardingService],
})
export class SegmentForwardingModule {}
