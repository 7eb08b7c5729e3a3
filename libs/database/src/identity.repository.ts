import { Injectable } from '@nestjs/common';
import { PrismaService } from './prisma.service';
import { StatementBatcher } from './statement-batcher';

/** Email to Segment userId mappings; emails are compared lower-cased. */
@Injectable()
export class IdentityRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** On the worker's hot path: concurrent lookups share one statement, straight through the pool. */
  findUserId(email: string): Promise<string | null> {
    return this.lookups.run(email.toLowerCase());
  }

  private readonly lookups = new StatementBatcher<string, string | null>(async (emails) => {
    const { rows } = await this.prisma.pool.query<{ email: string; user_id: string }>(
      'select email, user_id from identities where email = any($1::text[])',
      [emails],
    );
    const userIds = new Map(rows.map((row) => [row.email, row.user_id]));
    return emails.map((email) => userIds.get(email) ?? null);
  });

  async upsert(email: string, userId: string): Promise<void> {
    const key = email.toLowerCase();
    await this.prisma.identity.upsert({
      where: { email: key },
      create: { email: key, userId },
      update: { userId, updatedAt: new Date() },
    });
  }

  /** Returns whether a mapping existed. */
  async remove(email: string): Promise<boolean> {
    const { count } = await this.prisma.identity.deleteMany({ where: { email: email.toLowerCase() } });
    return count > 0;
  }
}
