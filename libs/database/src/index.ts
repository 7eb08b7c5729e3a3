export * from './database.module';
export * from './mailjet-event.repository';
export * from './prisma.service';
