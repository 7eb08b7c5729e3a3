import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig, ConfigModule } from '@app/config';
import { DatabaseModule } from '@app/database';
import { HealthModule } from '@app/health';
import { MetricsModule } from '@app/metrics';
import { QueueModule } from '@app/queue';
import { SourcesModule } from '@app/sources';
import { SegmentForwardingModule } from './segment-forwarding/segment-forwarding.module';

@Module({})
export class WorkerModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule,
        QueueModule.forRoot('consumer'),
        HealthModule,
        MetricsModule,
        SourcesModule,
        SegmentForwardingModule,
      ],
    };
  }
}
