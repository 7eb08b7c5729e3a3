import { Body, Controller, HttpCode, HttpStatus, Post, UseGuards } from '@nestjs/common';
import { MailjetBasicAuthGuard } from './mailjet-basic-auth.guard';
import { IngestResult, MailjetWebhookService } from './mailjet-webhook.service';

export const MAILJET_WEBHOOK_PATH = '/webhooks/mailjet';

@Controller()
export class MailjetWebhookController {
  constructor(private readonly webhook: MailjetWebhookService) {}

  /** The body arrives as text (see `registerBodyParsers`): big MessageIDs must not go through JSON.parse. */
  @Post(MAILJET_WEBHOOK_PATH)
  @HttpCode(HttpStatus.OK)
  @UseGuards(MailjetBasicAuthGuard)
  receive(@Body() body: string): Promise<IngestResult> {
    return this.webhook.ingest(body);
  }
}
