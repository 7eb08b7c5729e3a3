import { FLUSH_TIMEOUT_MS } from './segment-forwarding/destinations.service';
import { FORCED_CLOSE_DEADLINE_MS, SHUTDOWN_DEADLINE_MS } from './segment-forwarding/segment-forwarding.processor';

/**
 * The longest a stop may take: the worker's own deadlines (docs/SCALING.md) and a little more.
 * Past it, something never settled (a Redis that was away since the start keeps BullMQ's queue
 * from closing): the process exits rather than wait for the orchestrator's SIGKILL.
 */
export const EXIT_DEADLINE_MS = SHUTDOWN_DEADLINE_MS + FORCED_CLOSE_DEADLINE_MS + FLUSH_TIMEOUT_MS + 5_000;
