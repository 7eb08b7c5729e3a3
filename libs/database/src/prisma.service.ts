import { Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { AppConfig } from '@app/config';
import { PrismaClient } from './generated/prisma/client';

@Injectable()
export class PrismaService extends PrismaClient implements OnModuleInit, OnApplicationShutdown {
  constructor(config: AppConfig) {
    super({
      adapter: new PrismaPg({
        connectionString: config.databaseUrl,
        max: 20,
        // A request must fail fast (503, Mailjet retries) rather than hang while PostgreSQL is away.
        connectionTimeoutMillis: 3000,
        query_timeout: 10000,
      }),
    });
  }

  async onModuleInit(): Promise<void> {
    await this.$connect();
  }

  // After the HTTP server has closed and its requests have finished, not before (onModuleDestroy).
  async onApplicationShutdown(): Promise<void> {
    await this.$disconnect();
  }
}
