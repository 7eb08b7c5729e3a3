import { Module } from '@nestjs/common';
import { SegmentMappingModule } from '@app/segment';
import { MailjetRestModule } from '../mailjet-rest/mailjet-rest.module';
import { OutboxModule } from '../outbox/outbox.module';
import { AdminController } from './admin.controller';
import { EventAdminService } from './event-admin.service';
import { SourceAdminService } from './source-admin.service';
import { SourcesController } from './sources.controller';
import { StatusService } from './status.service';

@Module({
  imports: [OutboxModule, SegmentMappingModule, MailjetRestModule],
  controllers: [AdminController, SourcesController],
  providers: [EventAdminService, StatusService, SourceAdminService],
})
export class AdminModule {}
