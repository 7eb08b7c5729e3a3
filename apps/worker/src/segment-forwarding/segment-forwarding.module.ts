import { Module } from '@nestjs/common';
import { SegmentModule } from '@app/segment';
import { SegmentForwardingProcessor } from './segment-forwarding.processor';
import { SegmentForwardingService } from './segment-forwarding.service';

@Module({
  imports: [SegmentModule],
  providers: [SegmentForwardingService, SegmentForwardingProcessor],
  exports: [SegmentForwardingService],
})
export class SegmentForwardingModule {}
