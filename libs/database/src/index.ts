export * from './database-errors';
export * from './database.module';
export * from './event-stats.repository';
export * from './generated/prisma/enums';
export * from './identity.repository';
export * from './mailjet-event.repository';
export * from './prisma.service';
