import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, isISO8601, Matches, ValidateBy } from 'class-validator';

const BIGINT_ID = /^[1-9]\d{0,18}$/;

/** ISO 8601 date or date-time with offset (the forms Date reads the same everywhere). */
const IsWindowBound = () =>
  ValidateBy({
    name: 'isWindowBound',
    validator: {
      validate: (value) =>
        typeof value === 'string' &&
        /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(value) &&
        isISO8601(value, { strict: true }) &&
        Number.isFinite(Date.parse(value)),
      defaultMessage: (args) => `${args?.property} must be an ISO 8601 date or date-time with offset, e.g. 2026-11-01T00:00:00Z`,
    },
  });

export class EnsureCallbacksBody {
  @ApiPropertyOptional({ description: 'Point callbacks that lead elsewhere at this source too (else they are a conflict, left alone)' })
  @IsOptional()
  @IsBoolean()
  replace?: boolean;
}

export class StartBackfillBody {
  @ApiProperty({ description: 'Messages that arrived from this time on (inclusive), ISO 8601', example: '2026-11-01T00:00:00Z' })
  @IsWindowBound()
  from: string;

  @ApiProperty({ description: 'Messages that arrived before this time (exclusive), ISO 8601', example: '2026-11-02T00:00:00Z' })
  @IsWindowBound()
  to: string;
}

export class BackfillIdParams {
  @ApiProperty({ example: '1' })
  @Matches(BIGINT_ID, { message: 'id must be the decimal id of a backfill' })
  id: string;
}
