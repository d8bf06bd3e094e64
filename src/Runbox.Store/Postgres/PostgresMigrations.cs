namespace Runbox.Store.Postgres;

// Spec and result columns are json, not jsonb: programs print NUL characters, which json keeps as
// the escape \u0000 and jsonb refuses.
internal static class PostgresMigrations
{
    public static IReadOnlyList<Migration> All { get; } =
    [
        new(1, """
            CREATE TABLE tasks (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                id uuid NOT NULL UNIQUE,
                user_name text NOT NULL,
                spec json NOT NULL,
                status text NOT NULL,
                attempt integer NOT NULL,
                max_attempts integer NOT NULL,
                fence bigint NOT NULL,
                idempotency_key text,
                worker_id text,
                created_at timestamptz NOT NULL,
                started_at timestamptz,
                finished_at timestamptz,
                next_attempt_at timestamptz,
                dead_lettered boolean NOT NULL,
                result_attempt integer,
                UNIQUE (user_name, idempotency_key)
            );
            CREATE INDEX tasks_user_seq ON tasks (user_name, seq);
            CREATE INDEX tasks_status_seq ON tasks (status, seq);
            CREATE INDEX tasks_dead_lettered_seq ON tasks (dead_lettered, seq);
            CREATE INDEX tasks_finished_at ON tasks (finished_at) WHERE finished_at IS NOT NULL;

            CREATE TABLE transitions (
                task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                seq integer NOT NULL,
                from_status text,
                to_status text NOT NULL,
                at timestamptz NOT NULL,
                attempt integer NOT NULL,
                reason text NOT NULL,
                worker_id text,
                PRIMARY KEY (task_id, seq)
            );

            CREATE TABLE attempts (
                task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                attempt integer NOT NULL,
                fence bigint NOT NULL,
                result json NOT NULL,
                recorded_at timestamptz NOT NULL,
                PRIMARY KEY (task_id, attempt)
            );

            CREATE TABLE artifacts (
                task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                attempt integer NOT NULL,
                ordinal integer NOT NULL,
                name text NOT NULL,
                content bytea NOT NULL,
                PRIMARY KEY (task_id, attempt, name)
            );
            """),
        // What a listing reads instead of the full result (ITaskStore.ListAsync). A table of its own,
        // not a column of attempts: SQLite reaches a column stored after a large result only by reading
        // through the result's overflow pages. An attempt recorded before this version has no row here,
        // and only for such an attempt does a listing read the full result.
        new(2, """
            CREATE TABLE attempt_previews (
                task_id uuid NOT NULL,
                attempt integer NOT NULL,
                preview json NOT NULL,
                PRIMARY KEY (task_id, attempt),
                FOREIGN KEY (task_id, attempt) REFERENCES attempts (task_id, attempt) ON DELETE CASCADE
            );
            """),
    ];
}
