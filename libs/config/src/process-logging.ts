import { format } from 'node:util';
import type { LoggerService } from '@nestjs/common';

/**
 * Makes every line the process writes one JSON object, for log collectors: libraries that print
 * with `console` (BullMQ prints an unhandled Redis error with `console.error`, over several
 * lines) go through the logger instead, and so does a crash.
 */
export function logEverythingAsJson(logger: LoggerService, processName: string): void {
  const through = (level: 'log' | 'warn' | 'error' | 'debug') => (...args: unknown[]) => logger[level]?.(format(...args), 'console');
  console.log = through('log');
  console.info = through('log');
  console.warn = through('warn');
  console.error = through('error');
  console.debug = through('debug');
  console.trace = through('debug');
  process.on('uncaughtException', (error) => {
    logger.fatal?.(error, processName);
    process.exit(1);
  });
}
