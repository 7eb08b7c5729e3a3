import { configFromEnvironment } from '@app/config';
import { BridgeMetrics } from '@app/metrics';
import { KnownSource, SourceDirectory } from '@app/sources';
import { Destinations } from './destinations.service';

const sourceOf = (id: number): KnownSource => ({
  id,
  slug: `source${id}`,
  name: `source ${id}`,
  paused: false,
  deleted: false,
  destination: { preset: 'custom', host: `http://127.0.0.1:1/${id}`, writeKey: `key-${id}` },
  webhook: { user: 'mailjet', passwords: [] },
  mailjet: null,
});

/** The sources table as a worker knows it: two sources, both alive. */
function directoryOf(sources: KnownSource[]): SourceDirectory {
  const byId = new Map(sources.map((source) => [source.id, source]));
  return {
    byId: (id: number) => byId.get(id),
    all: () => sources,
    unreadable: () => [],
    reload: async () => undefined,
    onChange: () => undefined,
  } as unknown as SourceDirectory;
}

describe('Destinations', () => {
  const config = configFromEnvironment([], { WORKER_CONCURRENCY: '4' });
  let destinations: Destinations;

  beforeEach(() => {
    destinations = new Destinations(directoryOf([sourceOf(1), sourceOf(2)]), config, new BridgeMetrics());
  });
  afterEach(() => destinations.onApplicationShutdown());

  /** How many jobs of `sourceId` the gate lets in at once, none leaving. */
  async function admittedAtOnce(sourceId: number): Promise<number> {
    let admitted = 0;
    for (let i = 0; i < 10; i++) {
      const { gate } = await destinations.of(sourceId);
      if (gate.enter().admitted) admitted++;
    }
    return admitted;
  }

  it('lets a source take every slot while the other sources have no jobs', async () => {
    expect(await admittedAtOnce(1)).toBe(10);
  });

  it('keeps half the slots for another source once it has jobs too', async () => {
    await destinations.of(2);
    expect(await admittedAtOnce(1)).toBe(2);
  });
});
