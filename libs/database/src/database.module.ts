import { Global, Module } from '@nestjs/common';
import { EventStatsRepository } from './event-stats.repository';
import { IdentityRepository } from './identity.repository';
import { MailjetEventRepository } from './mailjet-event.repository';
import { PrismaService } from './prisma.service';

@Global()
@Module({
  providers: [PrismaService, MailjetEventRepository, IdentityRepository, EventStatsRepository],
  exports: [PrismaService, MailjetEventRepository, IdentityRepository, EventStatsRepository],
})
export class DatabaseModule {}
