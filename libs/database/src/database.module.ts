import { Global, Module } from '@nestjs/common';
import { IdentityRepository } from './identity.repository';
import { MailjetEventRepository } from './mailjet-event.repository';
import { PrismaService } from './prisma.service';

@Global()
@Module({
  providers: [PrismaService, MailjetEventRepository, IdentityRepository],
  exports: [PrismaService, MailjetEventRepository, IdentityRepository],
})
export class DatabaseModule {}
