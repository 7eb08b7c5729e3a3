import { Global, Module } from '@nestjs/common';
import { MailjetEventRepository } from './mailjet-event.repository';
import { PrismaService } from './prisma.service';

@Global()
@Module({
  providers: [PrismaService, MailjetEventRepository],
  exports: [PrismaService, MailjetEventRepository],
})
export class DatabaseModule {}
