import { Body, Controller, HttpCode, HttpStatus, Post } from '@nestjs/common';
import { ApiBasicAuth, ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { IngestResult, MailjetWebhookService } from './mailjet-webhook.service';

export const MAILJET_WEBHOOK_PATH = '/webhooks/mailjet';

@Controller()
export class MailjetWebhookController {
  constructor(private readonly webhook: MailjetWebhookService) {}

  /**
   * The Basic credentials are checked before the body is read (see `doorsOf` in api.app.ts).
   * The body arrives as text (see `registerBodyParsers`): big MessageIDs must not go through JSON.parse.
   */
  @Post(MAILJET_WEBHOOK_PATH)
  @ApiTags('mailjet')
  @ApiBasicAuth('mailjet')
  @ApiOperation({ summary: 'Mailjet event callback: one event object, or an array of them (grouped)' })
  @ApiBody({
    schema: {
      oneOf: [{ type: 'object' }, { type: 'array', items: { type: 'object' }, minItems: 1 }],
      example: { event: 'open', time: 1433103519, MessageID: 19421777396190490, email: 'api@mailjet.com' },
    },
  })
  @ApiResponse({ status: 200, description: 'Stored: {"received": N, "accepted": A, "invalid": I}' })
  @ApiResponse({ status: 400, description: 'Not JSON, or not an object or a non-empty array of objects' })
  @ApiResponse({ status: 401, description: 'Missing or wrong Basic credentials' })
  @ApiResponse({ status: 413, description: 'Body over WEBHOOK_MAX_BODY_BYTES' })
  @ApiResponse({ status: 503, description: 'PostgreSQL unavailable; nothing stored, Mailjet retries' })
  @HttpCode(HttpStatus.OK)
  receive(@Body() body: string): Promise<IngestResult> {
    return this.webhook.ingest(body);
  }
}
