import { Module } from '@nestjs/common';
import { EventEnqueuer } from './event-enqueuer.service';
import { MailjetBasicAuthGuard } from './mailjet-basic-auth.guard';
import { MailjetWebhookController } from './mailjet-webhook.controller';
import { MailjetWebhookService } from './mailjet-webhook.service';
import { OutboxRecoveryService } from './outbox-recovery.service';

@Module({
  controllers: [MailjetWebhookController],
  providers: [MailjetWebhookService, MailjetBasicAuthGuard, EventEnqueuer, OutboxRecoveryService],
})
export class MailjetWebhookModule {}
