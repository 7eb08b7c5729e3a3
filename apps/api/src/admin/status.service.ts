import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import { EventStatsRepository, EventStatus } from '@app/database';
import { withTimeout } from '@app/common';
import { MAILJET_EVENTS_QUEUE } from '@app/queue';
import { CallbackCheck, MailjetCallbacks } from '../mailjet-rest/mailjet-callbacks.service';

const QUEUE_TIMEOUT_MS = 2000;

interface JobCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

export interface AdminStatus {
  events: { total: number; byStatus: Record<EventStatus, number>; byType: Record<string, number> };
  /** Jobs by state, and `events`: how many events the jobs still to run hold (each job carries a group). */
  queue: (JobCounts & { events: number }) | { error: string };
  oldestPendingAgeSeconds: number | null;
  forwarded: { lastMinute: number; lastHour: number };
  recentFailureReasons: Array<{ reason: string; count: number }>;
  /** Per source with Mailjet API keys: what the last check of its callbacks found (dead or missing ones). */
  mailjet: { callbacks: CallbackCheck[] };
}

@Injectable()
export class StatusService {
  constructor(
    private readonly stats: EventStatsRepository,
    @InjectQueue(MAILJET_EVENTS_QUEUE) private readonly queue: Queue,
    private readonly callbacks: MailjetCallbacks,
  ) {}

  /**
   * Cheap enough to poll: counters and indexes only. Answers while Redis is down, saying so. Of
   * every source, or of one (`sourceId`): the queue is shared, so its job counts are the whole
   * queue's, and `queue.events` the source's queued events.
   */
  async status(sourceId: number | null = null, sourceSlug?: string): Promise<AdminStatus> {
    const [stats, jobs] = await Promise.all([this.stats.stats(sourceId), this.queueCounts()]);
    const byStatus = Object.fromEntries(Object.values(EventStatus).map((status) => [status, 0])) as Record<EventStatus, number>;
    const byType: Record<string, number> = {};
    for (const { status, eventType, count } of stats.counts) {
      byStatus[status] += count;
      byType[eventType] = (byType[eventType] ?? 0) + count;
    }
    const oldest = stats.oldestPendingReceivedAt;
    return {
      events: { total: Object.values(byStatus).reduce((a, b) => a + b, 0), byStatus, byType },
      // The rows are the truth: a `queued` event is in a job waiting, delayed or running (or in one
      // Redis lost, until the sweep moves it).
      queue: 'error' in jobs ? jobs : { ...jobs, events: byStatus.queued },
      oldestPendingAgeSeconds: oldest ? Math.max(0, Math.round((Date.now() - oldest.getTime()) / 1000)) : null,
      forwarded: { lastMinute: stats.forwardedLastMinute, lastHour: stats.forwardedLastHour },
      recentFailureReasons: stats.recentFailureReasons,
      mailjet: { callbacks: this.callbacks.lastChecks().filter((check) => sourceSlug === undefined || check.source === sourceSlug) },
    };
  }

  private async queueCounts(): Promise<JobCounts | { error: string }> {
    try {
      const counts = await withTimeout(
        this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'),
        QUEUE_TIMEOUT_MS,
        'Redis',
      );
      return {
        waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        failed: counts.failed ?? 0,
      };
    } catch (error) {
      return { error: `queue counts unavailable: ${(error as Error).message.split('\n')[0]}` };
    }
  }
}
