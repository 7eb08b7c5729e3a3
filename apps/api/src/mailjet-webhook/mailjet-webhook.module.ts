import { Module } from '@nestjs/common';
import { OutboxModule } from '../outbox/outbox.module';
import { GroupCommitWriter } from './group-commit.service';
import { MailjetWebhookController } from './mailjet-webhook.controller';
import { MailjetWebhookService } from './mailjet-webhook.service';

@Module({
  imports: [OutboxModule],
  controllers: [MailjetWebhookController],
  providers: [MailjetWebhookService, GroupCommitWriter],
})
export class MailjetWebhookModule {}
