import { plainToInstance } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, Min, validateSync } from 'class-validator';
import { decodeEventIds, EVENT_ID_RANGES } from './event-id-ranges';
import { ForwardEventsJobData, LegacyForwardEventJobData, MAX_EVENTS_PER_JOB } from './queue.constants';

const SEGMENT_MESSAGE_ID = /^mailjet-[0-9a-f]{64}$/;
const EVENT_ID = /^[1-9]\d{0,18}$/;
// Job data is read back from Redis: no more than this many characters of ids are read.
const MAX_EVENTS_TEXT = 64 * 1024;

class ForwardEventsJobDto implements Omit<ForwardEventsJobData, 'delivered'> {
  @IsString()
  @Matches(EVENT_ID_RANGES, { message: 'events must be ranges of decimal event ids' })
  events: string;

  @IsInt()
  @Min(1)
  @Max(MAX_EVENTS_PER_JOB)
  count: number;

  @IsOptional()
  @IsInt()
  @Min(1)
  source?: number;
}

class LegacyForwardEventJobDto implements LegacyForwardEventJobData {
  @Matches(EVENT_ID, { message: 'eventId must be the decimal id of a stored event' })
  eventId: string;

  @IsOptional()
  @Matches(SEGMENT_MESSAGE_ID, { message: 'deliveredMessageId must be a Segment messageId of this bridge' })
  deliveredMessageId?: string;
}

/** A job's events, as the worker takes them. */
export interface ForwardEventsJob {
  eventIds: bigint[];
  /** The source of all of its events, when the job says (every job made since sources did). */
  sourceId?: number;
  /** Events Segment already accepted (an earlier attempt could not record it): their Segment messageIds. */
  delivered: Map<bigint, string>;
}

function validated<T extends object>(dto: T): T {
  const errors = validateSync(dto, { whitelist: true });
  if (errors.length > 0) {
    throw new Error(`invalid job data: ${errors.flatMap((e) => Object.values(e.constraints ?? {})).join('; ')}`);
  }
  return dto;
}

function deliveredOf(delivered: unknown): Map<bigint, string> {
  const map = new Map<bigint, string>();
  if (delivered === undefined) return map;
  if (typeof delivered !== 'object' || delivered === null || Array.isArray(delivered)) {
    throw new Error('invalid job data: delivered must be an object');
  }
  let count = 0;
  for (const _ in delivered) if (++count > MAX_EVENTS_PER_JOB) break;
  const entries = count > MAX_EVENTS_PER_JOB ? [] : Object.entries(delivered);
  if (count > MAX_EVENTS_PER_JOB) throw new Error(`invalid job data: delivered holds more than ${MAX_EVENTS_PER_JOB} events`);
  for (const [id, messageId] of entries) {
    if (!EVENT_ID.test(id) || typeof messageId !== 'string' || !SEGMENT_MESSAGE_ID.test(messageId)) {
      throw new Error('invalid job data: delivered must map event ids to Segment messageIds of this bridge');
    }
    map.set(BigInt(id), messageId);
  }
  return map;
}

/** Job data comes back from Redis: it is checked like any other input before it is trusted. */
export function validateForwardEventsJobData(data: unknown): ForwardEventsJob {
  const plain = (data ?? {}) as Record<string, unknown>;
  const delivered = deliveredOf(plain.delivered);
  if ('eventId' in plain) {
    const legacy = validated(plainToInstance(LegacyForwardEventJobDto, { eventId: plain.eventId, deliveredMessageId: plain.deliveredMessageId }));
    const eventId = BigInt(legacy.eventId);
    if (legacy.deliveredMessageId) delivered.set(eventId, legacy.deliveredMessageId);
    return { eventIds: [eventId], delivered };
  }
  if (typeof plain.events === 'string' && plain.events.length > MAX_EVENTS_TEXT) throw new Error('invalid job data: events is too long');
  const dto = validated(plainToInstance(ForwardEventsJobDto, { events: plain.events, count: plain.count, source: plain.source }));
  let eventIds: bigint[];
  try {
    eventIds = decodeEventIds(dto.events, MAX_EVENTS_PER_JOB);
  } catch (error) {
    throw new Error(`invalid job data: ${(error as Error).message}`);
  }
  if (eventIds.length !== dto.count) throw new Error(`invalid job data: count ${dto.count} but ${eventIds.length} event ids`);
  return { eventIds, sourceId: dto.source, delivered };
}
