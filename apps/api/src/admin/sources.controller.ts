import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Patch, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { SourceAdminService } from './source-admin.service';
import { CreateSourceBody, SlugParams, UpdateSourceBody } from './sources.dto';

/** Where this request reached the api: the base of callback URLs when PUBLIC_URL is not set. */
const originOf = (request: FastifyRequest) => `${request.protocol}://${request.host}`;

/** Several Mailjet accounts, each with its own callback URL and destination (SPEC section 8). */
@ApiTags('sources')
@ApiBearerAuth()
@Controller('admin/sources')
export class SourcesController {
  constructor(private readonly sources: SourceAdminService) {}

  @Post()
  @ApiOperation({ summary: 'Create a source; the answer holds its webhook password, shown this once' })
  create(@Body() body: CreateSourceBody, @Req() request: FastifyRequest) {
    return this.sources.create(body, originOf(request));
  }

  @Get()
  @ApiOperation({ summary: 'Every source with its counts by status; no secrets' })
  list(@Req() request: FastifyRequest) {
    return this.sources.list(originOf(request));
  }

  @Get(':slug')
  @ApiOperation({ summary: 'One source with its counts by status; no secrets' })
  get(@Param() { slug }: SlugParams, @Req() request: FastifyRequest) {
    return this.sources.get(slug, originOf(request));
  }

  @Patch(':slug')
  @ApiOperation({ summary: 'Change name, destination, Mailjet keys, or pause (events wait as queued) and resume' })
  update(@Param() { slug }: SlugParams, @Body() body: UpdateSourceBody, @Req() request: FastifyRequest) {
    return this.sources.update(slug, body, originOf(request));
  }

  @Delete(':slug')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Delete a source (409 while it has received or queued events); its events stay queryable' })
  async delete(@Param() { slug }: SlugParams): Promise<void> {
    await this.sources.delete(slug);
  }

  @Post(':slug/webhook-password')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'A new webhook password, shown once; the previous one works for WEBHOOK_PASSWORD_GRACE_HOURS more' })
  rotate(@Param() { slug }: SlugParams, @Req() request: FastifyRequest) {
    return this.sources.rotateWebhookPassword(slug, originOf(request));
  }
}
