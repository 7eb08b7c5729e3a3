// Prisma error codes, PostgreSQL SQLSTATEs and socket errors for a database that cannot be
// reached, stopped answering, or aborted a statement that will go through when tried again.
const UNAVAILABLE_CODES = new Set([
  'P1001', 'P1002', 'P1008', 'P1017', 'P2024',
  '08000', '08001', '08003', '08006', '57P01', '57P02', '57P03',
  // A deadlock or a serialization failure: the statement is fine, and goes through when tried again.
  '40P01', '40001',
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH',
]);
const UNAVAILABLE_MESSAGE =
  /can't reach database|connection (terminated|refused|closed|reset)|ECONNREFUSED|ECONNRESET|ETIMEDOUT|timeout exceeded when trying to connect|server closed the connection|Query read timeout/i;

/**
 * Whether an error says PostgreSQL is unreachable (a passing outage), not that a query is wrong.
 * Read by shape, not `instanceof Error`: errors made by Node itself (a refused socket) come from
 * another realm under Jest.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) || (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message));
}
