// Public surface of @flowbus/clickhouse-writer (filled in as the actor is built).
export {}
