export * from './bridge-metrics.service';
export * from './metrics.module';
export * from './shared-state-gauges.service';
