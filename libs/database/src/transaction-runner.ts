import { Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { isDatabaseUnavailable } from './database-errors';
import { PrismaService } from './prisma.service';

/** What a repository may do inside a transaction that a service opened. */
export type Transaction = Pick<PoolClient, 'query'>;

/**
 * Transactions on the pool under Prisma, for the paths that skip Prisma's query layer (ingest).
 * The service sequences the steps inside; repositories take the transaction as an argument.
 */
@Injectable()
export class TransactionRunner {
  constructor(private readonly prisma: PrismaService) {}

  /** Runs `work` between BEGIN and COMMIT; rolls back and rethrows if it throws. */
  async run<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    const client = await this.prisma.pool.connect();
    // A checked-out client reports a lost connection as an 'error' event, which would crash the
    // process unheard; the failing query rejects anyway, and the broken client is discarded below.
    let connectionLost: Error | undefined;
    const onError = (error: Error) => (connectionLost = error);
    client.on('error', onError);
    try {
      await client.query('begin');
      const result = await work(client);
      await client.query('commit');
      return result;
    } catch (error) {
      // A statement PostgreSQL refused leaves a client that rolls back and serves again; a lost
      // connection (or a rollback that fails) leaves one to discard.
      await client.query('rollback').catch((rollbackError: Error) => (connectionLost ??= rollbackError));
      if (isDatabaseUnavailable(error)) connectionLost ??= error as Error;
      throw error;
    } finally {
      client.off('error', onError);
      client.release(connectionLost);
    }
  }
}
