import type { PostgresCluster, PostgresNode } from '@scale/testkit'
import { usePostgres } from '@scale/testkit/vitest'
import type { Generated } from 'kysely'
import pg from 'pg'
import { beforeAll } from 'vitest'
import { createReplicatedKysely, type ReplicatedKysely, type ReplicatedKyselyOptions } from '../src/index.js'

export interface Database {
  item: { id: Generated<number>; value: string; port: Generated<number> }
}

// Every row remembers, server-side, which server inserted it (a default of inet_server_port()).
export const SCHEMA = `create table if not exists item (
  id bigserial primary key,
  value text not null,
  port int not null default inet_server_port()
)`

export function pool(node: PostgresNode, max = 10): pg.Pool {
  const p = new pg.Pool({ ...node.connection, max, connectionTimeoutMillis: 5_000 })
  p.on('error', () => {}) // the router attaches its own too; this keeps tests quiet without it
  return p
}

export function replicatedDb(
  cluster: PostgresCluster,
  options: Partial<ReplicatedKyselyOptions> = {},
): ReplicatedKysely<Database> {
  return createReplicatedKysely<Database>({
    primary: { pool: pool(cluster.primary), name: 'primary' },
    replicas: cluster.replicas.map((replica) => ({ pool: pool(replica), name: replica.name })),
    monitorIntervalMs: 100,
    ...options,
  })
}

/** Port → node name, to turn inet_server_port() into the server that answered. */
export function portNames(cluster: PostgresCluster): Map<number, string> {
  return new Map(cluster.nodes.map((node) => [node.port, node.name]))
}

/**
 * A primary with 2 streaming replicas for the calling file, the `item` table created and one row
 * ('one') replicated before the file's own `beforeAll` hooks run.
 */
export function useSeededReplicas(): {
  readonly cluster: PostgresCluster
  readonly names: Map<number, string>
} {
  const postgres = usePostgres({ replicas: 2 })
  let names = new Map<number, string>()
  beforeAll(async () => {
    await postgres.primary.query(SCHEMA)
    await postgres.primary.query(`insert into item (value) values ('one')`)
    await postgres.cluster.waitForReplication()
    names = portNames(postgres.cluster)
  })
  return {
    get cluster() {
      return postgres.cluster
    },
    get names() {
      return names
    },
  }
}
