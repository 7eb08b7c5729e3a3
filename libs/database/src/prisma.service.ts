import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { Pool } from 'pg';
import { AppConfig } from '@app/config';
import { PrismaClient } from './generated/prisma/client';

/**
 * Prisma serves the admin API. What runs in every process all the time (ingest, the outbox's
 * recovery loop and sweep, the worker, health checks) goes to its pool directly: Prisma's query
 * engine is loaded on the first Prisma query, raw or not, and adds 80-95 MB of resident
 * memory, so a worker, or an api that nobody administers, never loads it (docs/DESIGN.md, "Data access").
 */
@Injectable()
export class PrismaService extends PrismaClient implements OnApplicationShutdown {
  /** The pool under Prisma, shared with the hot paths, which skip Prisma's query layer. */
  readonly pool: Pool;
  private readonly logger = new Logger(PrismaService.name);

  constructor(config: AppConfig) {
    const pool = new Pool({
      connectionString: config.databaseUrl,
      max: config.databasePoolSize,
      // A request must fail fast (503, Mailjet retries) rather than hang while PostgreSQL is away.
      connectionTimeoutMillis: 3000,
      query_timeout: 10000,
    });
    super({ adapter: new PrismaPg(pool) });
    this.pool = pool;
    // An idle connection that PostgreSQL drops is reported here; unheard, it would crash the process.
    pool.on('error', (error) => this.logger.warn(`idle PostgreSQL connection lost: ${error.message}`));
  }

  // After the HTTP server has closed and its requests have finished, not before (onModuleDestroy).
  async onApplicationShutdown(): Promise<void> {
    await this.$disconnect();
    await this.pool.end();
  }
}
