import { Module } from '@nestjs/common';
import { OutboxModule } from '../outbox/outbox.module';
import { GroupCommitWriter } from './group-commit.service';
import { MailjetBasicAuthGuard } from './mailjet-basic-auth.guard';
import { MailjetWebhookController } from './mailjet-webhook.controller';
import { MailjetWebhookService } from './mailjet-webhook.service';

@Module({
  imports: [OutboxModule],
  controllers: [MailjetWebhookController],
  providers: [MailjetWebhookService, MailjetBasicAuthGuard, GroupCommitWriter],
})
export class MailjetWebhookModule {}
