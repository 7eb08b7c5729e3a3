import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, Matches } from 'class-validator';
import { IsTimestamp } from '../admin/admin.dto';

const BIGINT_ID = /^[1-9]\d{0,18}$/;

export class EnsureCallbacksBody {
  @ApiPropertyOptional({ description: 'Point callbacks that lead elsewhere at this source too (else they are a conflict, left alone)' })
  @IsOptional()
  @IsBoolean()
  replace?: boolean;
}

export class StartBackfillBody {
  @ApiProperty({ description: 'Messages that arrived from this time on (inclusive), ISO 8601', example: '2026-11-01T00:00:00Z' })
  @IsTimestamp()
  from: string;

  @ApiProperty({ description: 'Messages that arrived before this time (exclusive), ISO 8601', example: '2026-11-02T00:00:00Z' })
  @IsTimestamp()
  to: string;
}

export class BackfillIdParams {
  @ApiProperty({ example: '1' })
  @Matches(BIGINT_ID, { message: 'id must be the decimal id of a backfill' })
  id: string;
}
