// Prisma error codes for a database that cannot be reached or stopped answering.
const UNAVAILABLE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const UNAVAILABLE_MESSAGE = /can't reach database|connection (terminated|refused|closed|reset)|ECONNREFUSED|ECONNRESET|ETIMEDOUT|timeout exceeded when trying to connect|server closed the connection/i;

/** Whether an error says PostgreSQL is unreachable (a passing outage), not that a query is wrong. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const prismaError = /^PrismaClient|^DriverAdapterError$/.test(error.constructor?.name ?? error.name) || error.name === 'DriverAdapterError';
  if (!prismaError) return false;
  const code = (error as { code?: unknown }).code;
  return (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) || UNAVAILABLE_MESSAGE.test(error.message);
}
