import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional } from 'class-validator';
import { IsEventId, IsTimestamp } from '../admin/admin.dto';

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
  @IsEventId('id must be the decimal id of a backfill')
  id: string;
}
