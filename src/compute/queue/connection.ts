// Where the job queue lives: a Redis server named by a `redis://[user:password@]host:port[/db]` URL (ATLAS_QUEUE or
// --queue, read in src/config.ts). Coordinator and workers must name the same server and the same queue.
import type { ConnectionOptions } from 'bullmq';

/** The BullMQ queue every shard job goes to. One per Redis database: give projects their own database (`/1`). */
export const QUEUE_NAME = 'atlas-shards';

/** ioredis options for a `redis://` or `rediss://` URL. */
export function redisConnection(url: string): ConnectionOptions {
  const u = new URL(url);
  const db = u.pathname.replace(/^\//, '');
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ's workers and event listeners block on Redis and must retry for ever rather than fail a command; a
    // server that goes away is waited for (README, "Running on several machines").
    maxRetriesPerRequest: null,
  };
}

/** The URL without its password, for messages. */
export function redisLabel(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString().replace(/\/$/, '');
}
