import { Injectable } from '@nestjs/common';
import { PrismaService } from './prisma.service';

/** Email to Segment userId mappings; emails are compared lower-cased. */
@Injectable()
export class IdentityRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** For the admin API's view of an event; the worker reads identities together with its events. */
  async findUserId(email: string): Promise<string | null> {
    const identity = await this.prisma.identity.findUnique({ where: { email: email.toLowerCase() }, select: { userId: true } });
    return identity?.userId ?? null;
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
