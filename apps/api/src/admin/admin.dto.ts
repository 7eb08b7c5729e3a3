import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsBoolean, IsEmail, IsIn, IsInt, IsISO8601, IsNotEmpty, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { EventStatus } from '@app/database';

const STATUSES = Object.values(EventStatus);
const REQUEUEABLE = ['failed', 'received', 'queued'] as const;
const toBoolean = ({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value);

class TimeRange {
  @ApiPropertyOptional({ description: 'Mailjet event time, ISO 8601, inclusive', example: '2026-11-01T00:00:00Z' })
  @IsOptional()
  @IsISO8601({ strict: true })
  from?: string;

  @ApiPropertyOptional({ description: 'Mailjet event time, ISO 8601, exclusive', example: '2026-11-02T00:00:00Z' })
  @IsOptional()
  @IsISO8601({ strict: true })
  to?: string;
}

export class ListEventsQuery extends TimeRange {
  @ApiPropertyOptional({ enum: STATUSES })
  @IsOptional()
  @IsIn(STATUSES)
  status?: EventStatus;

  @ApiPropertyOptional({ description: 'Mailjet event type (sent, open, click, ...)', example: 'click' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  type?: string;

  @ApiPropertyOptional({ example: 'api@mailjet.com' })
  @IsOptional()
  @IsString()
  @MaxLength(1000)
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
  @Matches(/^\d{1,19}$/, { message: 'cursor must be a nextCursor from a previous page' })
  cursor?: string;
}

export class EventIdParams {
  @ApiProperty({ example: '42' })
  @Matches(/^[1-9]\d{0,18}$/, { message: 'id must be the decimal id of a stored event' })
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
  @ApiProperty({ enum: REQUEUEABLE, default: 'failed' })
  @IsIn(REQUEUEABLE)
  status: (typeof REQUEUEABLE)[number];

  @ApiPropertyOptional({ example: 'open' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  type?: string;
}

export class IdentityParams {
  @ApiProperty({ example: 'api@mailjet.com' })
  @IsEmail({}, { message: 'email must be an email address' })
  email: string;
}

export class IdentityBody {
  @ApiProperty({ example: 'user-42' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(255)
  userId: string;
}
