export type PostgresSettings = Record<string, string | number | boolean>

// Tuned for throwaway test clusters: durability off (fsync), replication on, quick feedback.
export const BASE_SETTINGS: PostgresSettings = {
  listen_addresses: '127.0.0.1',
  fsync: 'off',
  full_page_writes: 'off',
  wal_level: 'replica',
  max_wal_senders: 20,
  max_replication_slots: 20,
  wal_keep_size: '256MB',
  hot_standby: 'on',
  hot_standby_feedback: 'on',
  wal_receiver_status_interval: '1s',
  shared_buffers: '32MB',
  max_connections: 200,
  log_min_messages: 'warning',
}

export function renderSettings(settings: PostgresSettings): string {
  return `\n${Object.entries(settings)
    .map(([key, value]) => `${key} = '${String(value).replaceAll("'", "''")}'`)
    .join('\n')}\n`
}
