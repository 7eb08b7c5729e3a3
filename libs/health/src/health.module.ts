import { Module } from '@nestjs/common';
import { HealthController } from './health.controller';

/** `GET /health/live` and `GET /health/ready`, the same in the api and the worker. */
@Module({ controllers: [HealthController] })
export class HealthModule {}
