import { Body, Controller, Delete, Get, Header, HttpCode, HttpStatus, NotFoundException, Param, Post, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { IdentityRepository } from '@app/database';
import { EventIdParams, IdentityBody, IdentityParams, ListEventsQuery, RequeueBody, RequeueOneQuery, StatusQuery } from './admin.dto';
import { EventAdminService } from './event-admin.service';
import { SourceAdminService } from './source-admin.service';
import { AdminStatus, StatusService } from './status.service';

/** Behind the admin token, as Bearer only: checked before the body is read (see `doorsOf` in api.app.ts). */
@ApiTags('admin')
@ApiBearerAuth()
@Controller('admin')
export class AdminController {
  constructor(
    private readonly statusService: StatusService,
    private readonly eventAdmin: EventAdminService,
    private readonly identities: IdentityRepository,
    private readonly sources: SourceAdminService,
  ) {}

  @Get('status')
  @ApiOperation({ summary: 'Counts by status and type, queue counts, oldest pending event, throughput, recent failure reasons; ?source= for one source' })
  async status(@Query() { source }: StatusQuery): Promise<AdminStatus> {
    return this.statusService.status((await this.sources.sourceIdOf(source)) ?? null, source);
  }

  @Get('events')
  @ApiOperation({ summary: 'Events, newest first, filtered; page with nextCursor' })
  listEvents(@Query() query: ListEventsQuery) {
    return this.eventAdmin.list(query);
  }

  @Get('events/:id')
  @Header('content-type', 'application/json; charset=utf-8')
  @ApiOperation({ summary: 'One event: raw payload as received, the Segment call it maps to, status, attempts, last error' })
  @ApiOkResponse({ description: 'The event' })
  getEvent(@Param() { id }: EventIdParams): Promise<string> {
    return this.eventAdmin.detailJson(BigInt(id));
  }

  @Post('events/:id/requeue')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Requeue one event; 409 if forwarded or duplicate, unless ?force=true replays a forwarded one' })
  requeueOne(@Param() { id }: EventIdParams, @Query() { force }: RequeueOneQuery) {
    return this.eventAdmin.requeueOne(BigInt(id), force === true);
  }

  @Post('requeue')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Requeue every event matching the filter; answers the count' })
  requeueMatching(@Body() body: RequeueBody) {
    return this.eventAdmin.requeueMatching(body);
  }

  @Put('identities/:email')
  @ApiOperation({ summary: 'Map an email to a Segment userId, for events that arrive after the change' })
  async putIdentity(@Param() { email }: IdentityParams, @Body() { userId }: IdentityBody) {
    await this.identities.upsert(email, userId);
    return { email: email.toLowerCase(), userId };
  }

  @Delete('identities/:email')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Remove the mapping of an email' })
  async deleteIdentity(@Param() { email }: IdentityParams): Promise<void> {
    if (!(await this.identities.remove(email))) throw new NotFoundException(`no identity for ${email}`);
  }
}
