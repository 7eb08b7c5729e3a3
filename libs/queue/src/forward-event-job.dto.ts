import { plainToInstance } from 'class-transformer';
import { IsOptional, IsString, Matches, validateSync } from 'class-validator';
import { ForwardEventJobData } from './queue.constants';

class ForwardEventJobDto implements ForwardEventJobData {
  @IsString()
  @Matches(/^[1-9]\d{0,18}$/, { message: 'eventId must be the decimal id of a stored event' })
  eventId: string;

  @IsOptional()
  @Matches(/^mailjet-[0-9a-f]{64}$/, { message: 'deliveredMessageId must be a Segment messageId of this bridge' })
  deliveredMessageId?: string;
}

/** Job data comes back from Redis: it is checked like any other input before it is trusted. */
export function validateForwardEventJobData(data: unknown): ForwardEventJobData {
  const dto = plainToInstance(ForwardEventJobDto, data ?? {});
  const errors = validateSync(dto, { whitelist: true });
  if (errors.length > 0) {
    throw new Error(`invalid job data: ${errors.flatMap((e) => Object.values(e.constraints ?? {})).join('; ')}`);
  }
  return dto.deliveredMessageId ? { eventId: dto.eventId, deliveredMessageId: dto.deliveredMessageId } : { eventId: dto.eventId };
}
