import { DynamicModule, Module, ValidationPipe } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { AppConfig, ConfigModule } from '@app/config';
import { DatabaseModule } from '@app/database';
import { HealthModule } from '@app/health';
import { MetricsModule } from '@app/metrics';
import { QueueModule } from '@app/queue';
import { SourcesModule } from '@app/sources';
import { AdminModule } from './admin/admin.module';
import { ApiExceptionFilter } from './common/api-exception.filter';
import { MailjetRestModule } from './mailjet-rest/mailjet-rest.module';
import { MailjetWebhookModule } from './mailjet-webhook/mailjet-webhook.module';
import { PartitionsModule } from './partitions/partitions.module';

@Module({})
export class ApiModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: ApiModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule,
        QueueModule.forRoot('producer'),
        HealthModule,
        MetricsModule,
        SourcesModule,
        MailjetWebhookModule,
        AdminModule,
        PartitionsModule,
      ],
      providers: [
        {
          provide: APP_PIPE,
          useValue: new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }),
        },
        { provide: APP_FILTER, useClass: ApiExceptionFilter },
      ],
    };
  }
}
