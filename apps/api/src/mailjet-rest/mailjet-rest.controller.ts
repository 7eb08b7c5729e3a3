import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { SlugParams } from '../admin/sources.dto';
import { BackfillView, MailjetBackfills } from './mailjet-backfills.service';
import { MailjetCallbacks } from './mailjet-callbacks.service';
import { BackfillIdParams, EnsureCallbacksBody, StartBackfillBody } from './mailjet-rest.dto';

/** Mailjet's REST API for a source with API keys (SPEC section 9): its callbacks, and backfills. */
@ApiTags('mailjet')
@ApiBearerAuth()
@Controller('admin')
export class MailjetRestController {
  constructor(
    private readonly callbacks: MailjetCallbacks,
    private readonly backfills: MailjetBackfills,
  ) {}

  @Post('sources/:slug/mailjet/callbacks')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: "Make the source's Mailjet callbacks point here: seven types, grouped, alive; idempotent" })
  ensureCallbacks(@Param() { slug }: SlugParams, @Body() body: EnsureCallbacksBody) {
    return this.callbacks.ensure(slug, body.replace === true);
  }

  @Get('sources/:slug/mailjet/callbacks')
  @ApiOperation({ summary: "The source's Mailjet callbacks as Mailjet has them (passwords masked)" })
  listCallbacks(@Param() { slug }: SlugParams) {
    return this.callbacks.list(slug);
  }

  @Post('sources/:slug/backfills')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({ summary: 'Pull the events of the messages that arrived in [from, to) from Mailjet; those already stored are not sent again' })
  startBackfill(@Param() { slug }: SlugParams, @Body() body: StartBackfillBody) {
    return this.backfills.start(slug, new Date(body.from), new Date(body.to));
  }

  @Get('backfills/:id')
  @ApiOperation({ summary: "A backfill's progress" })
  backfill(@Param() { id }: BackfillIdParams): Promise<BackfillView> {
    return this.backfills.get(BigInt(id));
  }

  @Delete('backfills/:id')
  @ApiOperation({ summary: 'Cancel a backfill; what it stored stays' })
  cancelBackfill(@Param() { id }: BackfillIdParams): Promise<BackfillView> {
    return this.backfills.cancel(BigInt(id));
  }
}
