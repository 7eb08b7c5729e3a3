export * from './destination-presets';
export * from './secret-box';
export * from './source-directory.service';
export * from './source.repository';
export * from './sources.module';
export * from './dedupe-scope';
