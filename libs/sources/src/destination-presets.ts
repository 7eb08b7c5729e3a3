/** Where a source's events go: every preset speaks `POST <host>/v1/batch` with Basic `writeKey:`. */
export const DESTINATION_PRESETS = ['segment-us', 'segment-eu', 'rudderstack', 'jitsu', 'custom'] as const;
export type DestinationPreset = (typeof DESTINATION_PRESETS)[number];

/** The presets whose host is fixed; the others take the data plane's host. */
export const PRESET_HOSTS: Partial<Record<DestinationPreset, string>> = {
  'segment-us': 'https://api.segment.io',
  'segment-eu': 'https://events.eu1.segmentapis.com',
};

export class DestinationError extends Error {}

/**
 * The host a destination sends to: the preset's own, unless a host is given (a test's sink, a
 * proxy); rudderstack, jitsu and custom need one. A host is an http(s) origin and path, never
 * credentials (the write key travels in the Authorization header).
 */
export function destinationHostOf(preset: DestinationPreset, host?: string): string {
  const chosen = host ?? PRESET_HOSTS[preset];
  if (chosen === undefined) throw new DestinationError(`destination.host is required for the ${preset} preset (the data plane's URL)`);
  let url: URL;
  try {
    url = new URL(chosen);
  } catch {
    throw new DestinationError('destination.host must be an http(s) URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new DestinationError('destination.host must be an http(s) URL');
  if (url.username || url.password) throw new DestinationError('destination.host must not carry credentials; the write key is sent as Basic auth');
  if (/[?#]/.test(chosen)) throw new DestinationError('destination.host must not have a query or a fragment');
  return chosen.replace(/\/+$/, '');
}

/** The preset an environment-configured SEGMENT_HOST corresponds to. */
export function presetOfHost(host: string): DestinationPreset {
  const bare = host.replace(/\/+$/, '');
  const preset = (Object.entries(PRESET_HOSTS) as Array<[DestinationPreset, string]>).find(([, fixed]) => fixed === bare);
  return preset ? preset[0] : 'custom';
}
