import { Body, Controller, HttpCode, HttpStatus, NotFoundException, Param, Post } from '@nestjs/common';
import { ApiBasicAuth, ApiBody, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { DEFAULT_SOURCE_ID, DEFAULT_SOURCE_SLUG, SourceDirectory } from '@app/sources';
import { IngestResult, MailjetWebhookService } from './mailjet-webhook.service';

export const MAILJET_WEBHOOK_PATH = '/webhooks/mailjet';
/** A source's own callback URL (SPEC section 8); the route pattern, as Fastify reports it. */
export const SOURCE_WEBHOOK_PATH = '/webhooks/mailjet/:slug';

const CALLBACK_BODY = {
  schema: {
    oneOf: [{ type: 'object' }, { type: 'array', items: { type: 'object' }, minItems: 1 }],
    example: { event: 'open', time: 1433103519, MessageID: 19421777396190490, email: 'api@mailjet.com' },
  },
};

/**
 * The Basic credentials (and, on a source's URL, the source) are checked before the body is read
 * (see `doorsOf` in api.app.ts). The body arrives as text (see `registerBodyParsers`): big
 * MessageIDs must not go through JSON.parse.
 */
@Controller()
@ApiTags('mailjet')
@ApiBasicAuth('mailjet')
@ApiResponse({ status: 200, description: 'Stored: {"received": N, "accepted": A, "invalid": I}' })
@ApiResponse({ status: 400, description: 'Not JSON, or not an object or a non-empty array of objects' })
@ApiResponse({ status: 401, description: 'Missing or wrong Basic credentials' })
@ApiResponse({ status: 413, description: 'Body over WEBHOOK_MAX_BODY_BYTES' })
@ApiResponse({ status: 503, description: 'PostgreSQL unavailable; nothing stored, Mailjet retries' })
export class MailjetWebhookController {
  constructor(
    private readonly webhook: MailjetWebhookService,
    private readonly sources: SourceDirectory,
  ) {}

  @Post(MAILJET_WEBHOOK_PATH)
  @ApiOperation({ summary: 'Mailjet event callback of the default source: one event object, or an array of them (grouped)' })
  @ApiBody(CALLBACK_BODY)
  @HttpCode(HttpStatus.OK)
  receive(@Body() body: string): Promise<IngestResult> {
    return this.webhook.ingest(body, { id: DEFAULT_SOURCE_ID, slug: DEFAULT_SOURCE_SLUG });
  }

  @Post(SOURCE_WEBHOOK_PATH)
  @ApiOperation({ summary: "Mailjet event callback of one source, with that source's credentials" })
  @ApiParam({ name: 'slug', description: 'The source slug from POST /admin/sources' })
  @ApiBody(CALLBACK_BODY)
  @ApiResponse({ status: 404, description: 'No such source, or it was deleted' })
  @HttpCode(HttpStatus.OK)
  receiveForSource(@Param('slug') slug: string, @Body() body: string): Promise<IngestResult> {
    const source = this.sources.bySlug(slug);
    // Deleted between the credentials check and here.
    if (!source) throw new NotFoundException(`no source ${slug}`);
    return this.webhook.ingest(body, source);
  }
}
