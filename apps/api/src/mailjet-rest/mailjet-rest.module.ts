import { Module } from '@nestjs/common';
import { OutboxModule } from '../outbox/outbox.module';
import { MailjetAccounts } from './mailjet-accounts.service';
import { MailjetBackfills } from './mailjet-backfills.service';
import { MailjetCallbacks } from './mailjet-callbacks.service';
import { MailjetRestController } from './mailjet-rest.controller';

/** Mailjet's REST API per source: callbacks as desired state, dead-callback checks, backfills. */
@Module({
  imports: [OutboxModule],
  controllers: [MailjetRestController],
  providers: [MailjetAccounts, MailjetCallbacks, MailjetBackfills],
  exports: [MailjetCallbacks],
})
export class MailjetRestModule {}
