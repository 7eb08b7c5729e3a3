import { Global, Module } from '@nestjs/common';
import { AdminEventRepository } from './admin-event.repository';
import { AnalystViewSettingsRepository } from './analyst-view-settings.repository';
import { AnalystViewSettings } from './analyst-view-settings.service';
import { BackfillRepository } from './backfill.repository';
import { EventPartitionRepository } from './event-partition.repository';
import { EventStatsRepository } from './event-stats.repository';
import { ForwardingEventRepository } from './forwarding-event.repository';
import { IdentityRepository } from './identity.repository';
import { IngestEventRepository } from './ingest-event.repository';
import { MailjetLookupRepository } from './mailjet-lookup.repository';
import { PrismaService } from './prisma.service';
import { TransactionRunner } from './transaction-runner';

const PROVIDERS = [
  PrismaService,
  TransactionRunner,
  IngestEventRepository,
  ForwardingEventRepository,
  AdminEventRepository,
  IdentityRepository,
  EventStatsRepository,
  EventPartitionRepository,
  BackfillRepository,
  MailjetLookupRepository,
  AnalystViewSettingsRepository,
  AnalystViewSettings,
];

@Global()
@Module({ providers: PROVIDERS, exports: PROVIDERS })
export class DatabaseModule {}
