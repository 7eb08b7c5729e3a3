import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { Pool } from 'pg';
import { AppConfig } from '@app/config';
import { PrismaClient } from './generated/prisma/client';

/**
 * Prisma serves the admin API's queries; the hot paths (ingest, worker, health) go to its pool
 * directly. Its query engine is loaded on the first Prisma query, not at start: about 90 MB of
 * resident memory that a worker, or an api that only ingests, never needs.
 */
@Injectable()
export class PrismaService extends PrismaClient implements OnApplicationShutdown {
  /** The pool under Prisma, shared with the hot paths, which skip Prisma's query layer. */
  readonly pool: Pool;
  private readonly logger = new Logger(PrismaService.name);

  constructor(config: AppConfig) {
    const pool = new Pool({
      connectionString: config.databaseUrl,
      max: 20,
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
