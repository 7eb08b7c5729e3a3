import { plainToInstance } from 'class-transformer';
import { IsString, Matches, validateSync } from 'class-validator';
import { ForwardEventJobData } from './queue.constants';

class ForwardEventJobDto implements ForwardEventJobData {
  @IsString()
  @Matches(/^[1-9]\d{0,18}$/, { message: 'eventId must be the decimal id of a stored event' })
  eventId: string;
}

/** Job data comes back from Redis: it is checked like any other input before it is trusted. */
export function validateForwardEventJobData(data: unknown): ForwardEventJobData {
  const dto = plainToInstance(ForwardEventJobDto, data ?? {});
  const errors = validateSync(dto, { whitelist: true });
  if (errors.length > 0) {
    throw new Error(`invalid job data: ${errors.flatMap((e) => Object.values(e.constraints ?? {})).join('; ')}`);
  }
  return { eventId: dto.eventId };
}
