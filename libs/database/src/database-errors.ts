// Prisma error codes, PostgreSQL SQLSTATEs and socket errors for a database that cannot be
// reached or stopped answering.
const UNAVAILABLE_CODES = new Set([
  'P1001', 'P1002', 'P1008', 'P1017', 'P2024',
  '08000', '08001', '08003', '08006', '57P01', '57P02', '57P03',
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH',
]);
const UNAVAILABLE_MESSAGE =
  /can't reach database|connection (terminated|refused|closed|reset)|ECONNREFUSED|ECONNRESET|ETIMEDOUT|timeout exceeded when trying to connect|server closed the connection|Query read timeout/i;

/** Whether an error says PostgreSQL is unreachable (a passing outage), not that a query is wrong. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) || UNAVAILABLE_MESSAGE.test(error.message);
}
