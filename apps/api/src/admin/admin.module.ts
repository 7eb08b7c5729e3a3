import { Module } from '@nestjs/common';
import { SegmentMappingModule } from '@app/segment';
import { OutboxModule } from '../outbox/outbox.module';
import { AdminController } from './admin.controller';
import { EventAdminService } from './event-admin.service';
import { StatusService } from './status.service';

@Module({
  imports: [OutboxModule, SegmentMappingModule],
  controllers: [AdminController],
  providers: [EventAdminService, StatusService],
})
export class AdminModule {}
