import { Global, Module } from '@nestjs/common';
import { SourceDirectory } from './source-directory.service';
import { SourceRepository } from './source.repository';

/** The sources table and its cache, one per process: imported once, by the process's root module. */
@Global()
@Module({ providers: [SourceRepository, SourceDirectory], exports: [SourceRepository, SourceDirectory] })
export class SourcesModule {}
