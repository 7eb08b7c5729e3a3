import { DestinationError, destinationHostOf, presetOfHost } from './destination-presets';

describe('destination presets', () => {
  it('gives the Segment presets their hosts, and takes an override', () => {
    expect(destinationHostOf('segment-us')).toBe('https://api.segment.io');
    expect(destinationHostOf('segment-eu')).toBe('https://events.eu1.segmentapis.com');
    expect(destinationHostOf('segment-eu', 'http://127.0.0.1:4000/')).toBe('http://127.0.0.1:4000');
  });

  it.each(['rudderstack', 'jitsu', 'custom'] as const)('requires a host for %s', (preset) => {
    expect(() => destinationHostOf(preset)).toThrow(`destination.host is required for the ${preset} preset`);
    expect(destinationHostOf(preset, 'https://dataplane.example.com/')).toBe('https://dataplane.example.com');
  });

  it.each([
    ['not a URL', 'dataplane'],
    ['another scheme', 'ftp://dataplane.example.com'],
    ['credentials', 'https://user:secret@dataplane.example.com'],
    ['a query', 'https://dataplane.example.com/?key=1'],
  ])('refuses a host with %s', (_, host) => {
    expect(() => destinationHostOf('custom', host)).toThrow(DestinationError);
  });

  it('names the preset of an environment-configured SEGMENT_HOST', () => {
    expect(presetOfHost('https://api.segment.io/')).toBe('segment-us');
    expect(presetOfHost('https://events.eu1.segmentapis.com')).toBe('segment-eu');
    expect(presetOfHost('http://127.0.0.1:4000')).toBe('custom');
  });
});
