import { Logger } from '@nestjs/common';
import { AppConfig, loadEnvironment } from '@app/config';
import { DroppedPartition, EventPartitionRepository, Transaction, TransactionRunner } from '@app/database';
import { EventPartitionsService, MONTHS_AHEAD } from './event-partitions.service';

const tx = {} as Transaction;
const transactions = { run: <T>(work: (tx: Transaction) => Promise<T>) => work(tx) } as unknown as TransactionRunner;

/** The repository as the service sees it; each call says what PostgreSQL would. */
function fakePartitions(overrides: Partial<Record<keyof EventPartitionRepository, jest.Mock>> = {}) {
  const drops: DroppedPartition[] = [{ partition: 'mailjet_events_2026_01', events: 5 }, { partition: 'mailjet_events_2026_02', events: 7 }];
  return {
    lock: jest.fn().mockResolvedValue(true),
    ensureAhead: jest.fn().mockResolvedValue(['mailjet_events_2027_03']),
    dropOneExpired: jest.fn().mockImplementation(async () => drops.shift() ?? null),
    expired: jest.fn().mockResolvedValue(['mailjet_events_2026_03']),
    ...overrides,
  };
}

function serviceWith(partitions: ReturnType<typeof fakePartitions>, environment: Record<string, string> = {}) {
  return new EventPartitionsService(
    partitions as unknown as EventPartitionRepository,
    transactions,
    new AppConfig(loadEnvironment(environment, [])),
  );
}

describe('EventPartitionsService', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('makes the coming months, and drops nothing without EVENT_RETENTION_DAYS', async () => {
    const partitions = fakePartitions();
    expect(await serviceWith(partitions).upkeep()).toEqual({ busy: false, created: ['mailjet_events_2027_03'], dropped: [], kept: [] });
    expect(partitions.ensureAhead).toHaveBeenCalledWith(tx, MONTHS_AHEAD);
    expect(partitions.dropOneExpired).not.toHaveBeenCalled();
  });

  it('drops expired months one transaction each until none is left, and names those kept', async () => {
    const partitions = fakePartitions();
    const upkeep = await serviceWith(partitions, { EVENT_RETENTION_DAYS: '90' }).upkeep();
    expect(upkeep).toEqual({
      busy: false,
      created: ['mailjet_events_2027_03'],
      dropped: [
        { partition: 'mailjet_events_2026_01', events: 5 },
        { partition: 'mailjet_events_2026_02', events: 7 },
      ],
      kept: ['mailjet_events_2026_03'],
    });
    expect(partitions.dropOneExpired).toHaveBeenCalledTimes(3);
    expect(partitions.dropOneExpired).toHaveBeenCalledWith(tx, 90);
    expect(partitions.lock).toHaveBeenCalledTimes(4);
    expect(Logger.prototype.warn).toHaveBeenCalledWith(expect.stringContaining('kept event partition(s) mailjet_events_2026_03'));
  });

  it('leaves the work to the process that holds the lock', async () => {
    const partitions = fakePartitions({ lock: jest.fn().mockResolvedValue(false) });
    expect(await serviceWith(partitions, { EVENT_RETENTION_DAYS: '90' }).upkeep()).toEqual({ busy: true, created: [], dropped: [], kept: [] });
    expect(partitions.ensureAhead).not.toHaveBeenCalled();
    expect(partitions.dropOneExpired).not.toHaveBeenCalled();
  });

  it('runs at start, then daily; after a failure, again in 10 minutes', async () => {
    const partitions = fakePartitions({ ensureAhead: jest.fn().mockRejectedValueOnce(new Error('lock timeout')).mockResolvedValue([]) });
    const service = serviceWith(partitions);
    service.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(0);
    expect(partitions.ensureAhead).toHaveBeenCalledTimes(1);
    expect(Logger.prototype.warn).toHaveBeenCalledWith('partition upkeep failed, next try in 10 minutes: lock timeout');

    await jest.advanceTimersByTimeAsync(10 * 60_000 - 1);
    expect(partitions.ensureAhead).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(partitions.ensureAhead).toHaveBeenCalledTimes(2);

    await jest.advanceTimersByTimeAsync(24 * 3_600_000 - 1);
    expect(partitions.ensureAhead).toHaveBeenCalledTimes(2);
    await jest.advanceTimersByTimeAsync(1);
    expect(partitions.ensureAhead).toHaveBeenCalledTimes(3);

    await service.onModuleDestroy();
    await jest.advanceTimersByTimeAsync(48 * 3_600_000);
    expect(partitions.ensureAhead).toHaveBeenCalledTimes(3);
  });
});
