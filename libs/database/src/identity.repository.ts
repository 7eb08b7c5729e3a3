import { Injectable } from '@nestjs/common';
import { PrismaService } from './prisma.service';

/** Email to Segment userId mappings; emails are compared lower-cased. */
@Injectable()
export class IdentityRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** For the admin API's view of an event; the worker reads identities with its events. */
  async findUserId(email: string): Promise<string | null> {
    const { rows } = await this.prisma.pool.query<{ user_id: string }>('select user_id from identities where email = $1', [
      email.toLowerCase(),
    ]);
    return rows[0]?.user_id ?? null;
  }

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
