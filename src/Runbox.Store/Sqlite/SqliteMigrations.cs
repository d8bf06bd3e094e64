namespace Runbox.Store.Sqlite;

internal static class SqliteMigrations
{
    public static IReadOnlyList<Migration> All { get; } =
    [
        new(1, """
            CREATE TABLE tasks (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                user_name TEXT NOT NULL,
                spec TEXT NOT NULL,
                status TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                max_attempts INTEGER NOT NULL,
                fence INTEGER NOT NULL,
                idempotency_key TEXT,
                worker_id TEXT,
                created_at INTEGER NOT NULL,
                started_at INTEGER,
                finished_at INTEGER,
                next_attempt_at INTEGER,
                dead_lettered INTEGER NOT NULL,
                result_attempt INTEGER,
                UNIQUE (user_name, idempotency_key)
            );
            CREATE INDEX tasks_user_seq ON tasks (user_name, seq);
            CREATE INDEX tasks_status_seq ON tasks (status, seq);
            CREATE INDEX tasks_dead_lettered_seq ON tasks (dead_lettered, seq);
            CREATE INDEX tasks_finished_at ON tasks (finished_at) WHERE finished_at IS NOT NULL;

            CREATE TABLE transitions (
                task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                seq INTEGER NOT NULL,
                from_status TEXT,
                to_status TEXT NOT NULL,
                at INTEGER NOT NULL,
                attempt INTEGER NOT NULL,
                reason TEXT NOT NULL,
                worker_id TEXT,
                PRIMARY KEY (task_id, seq)
            );

            CREATE TABLE attempts (
                task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                attempt INTEGER NOT NULL,
                fence INTEGER NOT NULL,
                result TEXT NOT NULL,
                recorded_at INTEGER NOT NULL,
                PRIMARY KEY (task_id, attempt)
            );

            CREATE TABLE artifacts (
                task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                attempt INTEGER NOT NULL,
                ordinal INTEGER NOT NULL,
                name TEXT NOT NULL,
                content BLOB NOT NULL,
                PRIMARY KEY (task_id, attempt, name)
            );
            """),
        // What a listing reads instead of the full result (ITaskStore.ListAsync). A table of its own,
        // not a column of attempts: SQLite reaches a column stored after a large result only by reading
        // through the result's overflow pages. An attempt recorded before this version has no row here,
        // and only for such an attempt does a listing read the full result.
        new(2, """
            CREATE TABLE attempt_previews (
                task_id TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                preview TEXT NOT NULL,
                PRIMARY KEY (task_id, attempt),
                FOREIGN KEY (task_id, attempt) REFERENCES attempts (task_id, attempt) ON DELETE CASCADE
            );
            """),
    ];
}
