import { DEFAULT_SOURCE_ID } from './source.repository';

/**
 * The dedupe key of an event of `source`: the same Mailjet event sent to two sources is two events
 * (two accounts, two destinations). The default source keeps the bare key, so that events stored
 * before sources existed still meet their replays; another source's key starts with its slug.
 * The Segment messageId derives from this key, so it differs per source too.
 */
export function scopedDedupeKey(source: { id: number; slug: string }, key: string | null): string | null {
  return key === null || source.id === DEFAULT_SOURCE_ID ? key : `${source.slug}:${key}`;
}
