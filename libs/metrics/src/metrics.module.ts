import { Global, Module } from '@nestjs/common';
import { BridgeMetrics } from './bridge-metrics.service';
import { MetricsController } from './metrics.controller';
import { SharedStateGauges } from './shared-state-gauges.service';

/** Prometheus metrics (SPEC section 10): the registry, the shared-state gauges and `GET /metrics`. */
@Global()
@Module({ controllers: [MetricsController], providers: [BridgeMetrics, SharedStateGauges], exports: [BridgeMetrics] })
export class MetricsModule {}
