import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  IsBoolean,
  IsEmail,
  IsIn,
  IsInt,
  isISO8601,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateBy,
} from 'class-validator';
import { EventStatus } from '@app/database';

const STATUSES = Object.values(EventStatus);
const REQUEUEABLE = ['failed', 'received', 'queued'] as const;
const toBoolean = ({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value);

const BIGINT_MAX = 9223372036854775807n;

/** An event id: positive, and within PostgreSQL's bigint (a larger one would fail the query, not match nothing). */
export const IsEventId = (message: string) =>
  ValidateBy({
    name: 'isEventId',
    validator: {
      validate: (value) => typeof value === 'string' && /^[1-9]\d{0,18}$/.test(value) && BigInt(value) <= BIGINT_MAX,
      defaultMessage: () => message,
    },
  });

/**
 * ISO 8601 as a calendar date (UTC) or a date and time with its offset: the forms `Date` reads
 * the same on every machine. Week dates (`2023-W46`), ordinal dates and the basic format are
 * valid ISO 8601 but not readable by `Date`; a time without offset would be read in the
 * server's time zone.
 */
const CALENDAR_TIMESTAMP = /^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;
export const IsTimestamp = () =>
  ValidateBy({
    name: 'isTimestamp',
    validator: {
      validate: (value) =>
        typeof value === 'string' &&
        CALENDAR_TIMESTAMP.test(value) &&
        isISO8601(value, { strict: true }) &&
        Number.isFinite(Date.parse(value)),
      defaultMessage: (args) => `${args?.property} must be an ISO 8601 date or date-time with offset, e.g. 2026-11-01 or 2026-11-01T00:00:00Z`,
    },
  });

/** PostgreSQL text cannot hold U+0000: a query with one fails, so it is refused here. */
const HasNoNul = () => Matches(/^[^\u0000]*$/, { message: '$property must not contain NUL characters' });

/** A source slug, as POST /admin/sources makes them, or `default`. */
export const IsSourceSlug = (property = 'source') =>
  Matches(/^[a-z0-9-]{1,64}$/, { message: `${property} must be the slug of a source (lower-case letters, digits and -)` });

class TimeRange {
  @ApiPropertyOptional({ description: 'Mailjet event time, ISO 8601, inclusive', example: '2026-11-01T00:00:00Z' })
  @IsOptional()
  @IsTimestamp()
  from?: string;

  @ApiPropertyOptional({ description: 'Mailjet event time, ISO 8601, exclusive', example: '2026-11-02T00:00:00Z' })
  @IsOptional()
  @IsTimestamp()
  to?: string;
}

export class ListEventsQuery extends TimeRange {
  @ApiPropertyOptional({ description: 'Events of this source only (its slug)', example: 'default' })
  @IsOptional()
  @IsSourceSlug()
  source?: string;

  @ApiPropertyOptional({ enum: STATUSES })
  @IsOptional()
  @IsIn(STATUSES)
  status?: EventStatus;

  @ApiPropertyOptional({ description: 'Mailjet event type (sent, open, click, ...)', example: 'click' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  @HasNoNul()
  type?: string;

  @ApiPropertyOptional({ example: 'api@mailjet.com' })
  @IsOptional()
  @IsString()
  @MaxLength(1000)
  @HasNoNul()
  email?: string;

  @ApiPropertyOptional({ description: 'Mailjet MessageID, exact digits', example: '19421777835146491' })
  @IsOptional()
  @Matches(/^\d{1,20}$/, { message: 'messageId must be the decimal digits of a Mailjet MessageID' })
  messageId?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;

  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  @IsOptional()
  @IsEventId('cursor must be a nextCursor from a previous page')
  cursor?: string;
}

export class EventIdParams {
  @ApiProperty({ example: '42' })
  @IsEventId('id must be the decimal id of a stored event')
  id: string;
}

export class RequeueOneQuery {
  @ApiPropertyOptional({ description: 'Send a forwarded event again, with the same Segment messageId' })
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  force?: boolean;
}

export class RequeueBody extends TimeRange {
  @ApiPropertyOptional({ description: 'Events of this source only (its slug)', example: 'default' })
  @IsOptional()
  @IsSourceSlug()
  source?: string;

  @ApiProperty({ enum: REQUEUEABLE, default: 'failed' })
  @IsIn(REQUEUEABLE)
  status: (typeof REQUEUEABLE)[number];

  @ApiPropertyOptional({ example: 'open' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  @HasNoNul()
  type?: string;
}

export class IdentityParams {
  @ApiProperty({ example: 'api@mailjet.com' })
  @IsEmail({}, { message: 'email must be an email address' })
  @HasNoNul()
  email: string;
}

export class IdentityBody {
  @ApiProperty({ example: 'user-42' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(255)
  @HasNoNul()
  userId: string;
}

export class StatusQuery {
  @ApiPropertyOptional({ description: 'The figures of this source only (its slug)', example: 'default' })
  @IsOptional()
  @IsSourceSlug()
  source?: string;
}
