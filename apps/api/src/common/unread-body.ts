import type { FastifyInstance } from 'fastify';

/**
 * An answer sent before the body was read (a `401` from a door, a `413` on its Content-Length, a
 * `415`) must not close the connection while the client is still sending: the kernel would
 * answer the data still coming with a reset, which makes the client (Node's fetch, for one) lose
 * the answer. So the rest of the body is read and dropped, up to `maxBytes`, and the connection
 * stays usable; beyond that it is closed. Nothing is kept, and the request timeout still bounds
 * how long a client may take.
 */
export function discardUnreadBodies(instance: FastifyInstance, maxBytes: number): void {
  instance.addHook('onSend', (request, reply, payload, done) => {
    const incoming = request.raw;
    // `complete` turns true once the whole body has arrived (and is undefined under `inject`).
    if (incoming.complete !== false) return done(null, payload);
    if (Number(incoming.headers['content-length']) > maxBytes) {
      reply.header('connection', 'close');
      return done(null, payload);
    }
    // Fastify asks to close after a 413; the body is drained instead.
    if (reply.statusCode === 413) reply.removeHeader('connection');
    let discarded = 0;
    incoming.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > maxBytes) incoming.socket.destroy();
    });
    incoming.resume();
    done(null, payload);
  });
}
