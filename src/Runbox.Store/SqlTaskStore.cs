using System.Data;
using System.Data.Common;
using System.Text;
using Microsoft.Extensions.Logging;
using Runbox.Core.Execution;
using Runbox.Core.Seams;
using Runbox.Core.Tasks;

namespace Runbox.Store;

/// <summary>
/// The SQL both stores share. Each backend supplies connections, transactions, how ids, times and
/// JSON travel as parameters, and its migrations; every query below is written once and runs on both.
/// </summary>
/// <remarks>
/// Concurrency rests on one rule: every status change is a single conditional UPDATE carrying the
/// expected status and the fence, and its affected row count decides who won. The loser's
/// transaction is rolled back whole, so a refused step never leaves an earlier step behind.
/// </remarks>
public abstract class SqlTaskStore : ITaskStore, IAsyncDisposable
{
    /// <summary>The most tasks one <see cref="ListAsync"/> page holds.</summary>
    public const int MaxPageSize = 200;

    /// <summary>The most tasks one <see cref="ListByStatusAsync"/> call returns.</summary>
    public const int MaxBatchSize = 1000;

    private const string TaskColumns = """
        t.seq, t.id, t.spec, t.status, t.attempt, t.max_attempts, t.fence, t.idempotency_key, t.worker_id,
               t.created_at, t.started_at, t.finished_at, t.next_attempt_at, t.dead_lettered
        """;

    private const string SelectTasks = $"""
        SELECT {TaskColumns}, a.result
        FROM tasks t
        LEFT JOIN attempts a ON a.task_id = t.id AND a.attempt = t.result_attempt
        """;

    // The full result is read only for an attempt recorded before previews were kept (no preview row).
    private const string SelectTaskPreviews = $"""
        SELECT {TaskColumns}, COALESCE(p.preview, a.result)
        FROM tasks t
        LEFT JOIN attempt_previews p ON p.task_id = t.id AND p.attempt = t.result_attempt
        LEFT JOIN attempts a ON a.task_id = t.id AND a.attempt = t.result_attempt
        """;

    private const string SelectTasksWithoutResults = $"""
        SELECT {TaskColumns}, NULL
        FROM tasks t
        """;

    private readonly StoreOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly SemaphoreSlim _migrationGate = new(1, 1);
    private volatile bool _migrated;

    private protected SqlTaskStore(StoreOptions options, TimeProvider timeProvider, ILogger logger)
    {
        _options = options;
        _timeProvider = timeProvider;
        Logger = logger;
    }

    private protected ILogger Logger { get; }

    /// <summary>Name used in logs: "sqlite" or "postgres".</summary>
    private protected abstract string Backend { get; }

    /// <summary>Migrations in version order; each runs once, in the same transaction as its version row.</summary>
    private protected abstract IReadOnlyList<Migration> Migrations { get; }

    /// <summary>
    /// Runs <paramref name="work"/> on an open connection inside a transaction: for a write, one that
    /// holds the write lock where the backend has one; for a read, one snapshot. The work commits;
    /// a transaction it leaves open is rolled back.
    /// </summary>
    private protected abstract Task<T> RunAsync<T>(bool write, Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken);

    /// <summary>Whatever must happen once before the migration transaction (SQLite's journal mode).</summary>
    private protected virtual Task PrepareAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Serialises migrations across processes; called first inside the migration transaction.</summary>
    private protected abstract Task LockMigrationsAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken);

    private protected abstract void AddId(DbCommand command, string name, Guid id);

    private protected abstract Guid ReadId(DbDataReader reader, int ordinal);

    private protected abstract void AddTime(DbCommand command, string name, DateTimeOffset? time);

    private protected abstract DateTimeOffset ReadTime(DbDataReader reader, int ordinal);

    private protected abstract void AddJson(DbCommand command, string name, string json);

    private protected abstract ValueTask DisposeResourcesAsync();

    /// <summary>
    /// Creates or upgrades the schema. Idempotent and safe when several processes start at once.
    /// Every other method calls it first, so calling it at startup only moves the work (and any
    /// error) earlier.
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        if (_migrated)
        {
            return;
        }
        await _migrationGate.WaitAsync(cancellationToken);
        try
        {
            if (_migrated)
            {
                return;
            }
            await PrepareAsync(cancellationToken);
            await RunAsync(write: true, async (connection, transaction) =>
            {
                await LockMigrationsAsync(connection, transaction, cancellationToken);
                await ExecuteAsync(connection, transaction, """
                    CREATE TABLE IF NOT EXISTS runbox_schema_migrations (
                        version integer PRIMARY KEY,
                        applied_at text NOT NULL
                    )
                    """, cancellationToken);
                int current;
                await using (var command = Command(connection, transaction, "SELECT COALESCE(MAX(version), 0) FROM runbox_schema_migrations"))
                {
                    current = Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
                }
                foreach (var migration in Migrations.Where(m => m.Version > current))
                {
                    await ExecuteAsync(connection, transaction, migration.Sql, cancellationToken);
                    await using var record = Command(connection, transaction, "INSERT INTO runbox_schema_migrations (version, applied_at) VALUES (@version, @at)");
                    Add(record, "@version", migration.Version, DbType.Int32);
                    Add(record, "@at", Now().ToString("O", System.Globalization.CultureInfo.InvariantCulture), DbType.String);
                    await record.ExecuteNonQueryAsync(cancellationToken);
                    Log.MigrationApplied(Logger, migration.Version, Backend);
                }
                await transaction.CommitAsync(cancellationToken);
                return true;
            }, cancellationToken);
            _migrated = true;
        }
        finally
        {
            _migrationGate.Release();
        }
    }

    public async Task<CreateTaskResult> CreateAsync(NewTask task, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(task);
        await MigrateAsync(cancellationToken);
        var now = Now();
        var id = Guid.CreateVersion7(now);
        var spec = StoreJson.SerializeSpec(task.Spec);
        return await RunAsync(write: true, async (connection, transaction) =>
        {
            bool inserted;
            await using (var insert = Command(connection, transaction, """
                INSERT INTO tasks (id, user_name, spec, status, attempt, max_attempts, fence, idempotency_key, created_at, dead_lettered)
                VALUES (@id, @user, @spec, @status, 0, @max_attempts, 0, @key, @now, @dead)
                ON CONFLICT (user_name, idempotency_key) DO NOTHING
                RETURNING seq
                """))
            {
                AddId(insert, "@id", id);
                Add(insert, "@user", task.Spec.User, DbType.String);
                AddJson(insert, "@spec", spec);
                Add(insert, "@status", TaskStatus.Pending.ToWire(), DbType.String);
                Add(insert, "@max_attempts", task.Spec.Retry.MaxAttempts, DbType.Int32);
                Add(insert, "@key", task.IdempotencyKey, DbType.String);
                AddTime(insert, "@now", now);
                Add(insert, "@dead", false, DbType.Boolean);
                inserted = await insert.ExecuteScalarAsync(cancellationToken) is not null;
            }

            if (!inserted)
            {
                // The key is taken: ON CONFLICT waited for the first writer, so its task is visible now.
                var existing = await LoadAsync(connection, transaction, ResultRead.Whole, "t.user_name = @user AND t.idempotency_key = @key", command =>
                {
                    Add(command, "@user", task.Spec.User, DbType.String);
                    Add(command, "@key", task.IdempotencyKey, DbType.String);
                }, "", cancellationToken);
                await transaction.CommitAsync(cancellationToken);
                return new CreateTaskResult(existing.Single(), Created: false);
            }

            await InsertTransitionAsync(connection, transaction, id, null, TaskStatus.Pending, now, 0, "submitted", null, cancellationToken);
            var created = await LoadByIdAsync(connection, transaction, id, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return new CreateTaskResult(created!, Created: true);
        }, cancellationToken);
    }

    public async Task<TaskRecord?> GetAsync(Guid id, CancellationToken cancellationToken)
    {
        await MigrateAsync(cancellationToken);
        return await RunAsync(write: false, (connection, transaction) => LoadByIdAsync(connection, transaction, id, cancellationToken), cancellationToken);
    }

    public async Task<TaskPage> ListAsync(TaskQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var limit = Math.Clamp(query.Limit, 1, MaxPageSize);
        long? before = string.IsNullOrEmpty(query.Cursor) ? null : PageCursor.Decode(query.Cursor);
        await MigrateAsync(cancellationToken);

        var where = new List<string>();
        if (query.User is not null)
        {
            where.Add("t.user_name = @user");
        }
        if (query.Status is not null)
        {
            where.Add("t.status = @status");
        }
        if (query.DeadLettered is not null)
        {
            where.Add("t.dead_lettered = @dead");
        }
        if (before is not null)
        {
            where.Add("t.seq < @before");
        }
        var condition = where.Count == 0 ? "1 = 1" : string.Join(" AND ", where);

        return await RunAsync(write: false, async (connection, transaction) =>
        {
            var rows = await ReadTasksAsync(connection, transaction, ResultRead.Preview, condition, command =>
            {
                Add(command, "@user", query.User, DbType.String);
                Add(command, "@status", query.Status?.ToWire(), DbType.String);
                Add(command, "@dead", query.DeadLettered, DbType.Boolean);
                Add(command, "@before", before, DbType.Int64);
                // One row more than the page tells whether another page follows.
                Add(command, "@limit", limit + 1, DbType.Int32);
            }, "ORDER BY t.seq DESC LIMIT @limit", cancellationToken);
            var page = rows.Take(limit).ToList();
            var items = await WithDetailsAsync(connection, transaction, page.Select(r => r.Record).ToList(), cancellationToken);
            return new TaskPage(items, rows.Count > limit ? PageCursor.Encode(page[^1].Seq) : null);
        }, cancellationToken);
    }

    public Task<TransitionResult> TransitionAsync(IReadOnlyList<TransitionRequest> steps, CancellationToken cancellationToken) =>
        ApplyAsync(steps, readBack: true, cancellationToken);

    public Task<TransitionResult> CommitAsync(IReadOnlyList<TransitionRequest> steps, CancellationToken cancellationToken) =>
        ApplyAsync(steps, readBack: false, cancellationToken);

    private async Task<TransitionResult> ApplyAsync(IReadOnlyList<TransitionRequest> steps, bool readBack, CancellationToken cancellationToken)
    {
        var id = ValidateSteps(steps);
        await MigrateAsync(cancellationToken);

        if (steps.Any(step => !TaskStateMachine.CanTransition(step.From, step.To)))
        {
            return await RunAsync(write: false, (connection, transaction) =>
                RefuseAsync(connection, transaction, id, TransitionConflict.InvalidTransition, cancellationToken), cancellationToken);
        }

        var now = Now();
        return await RunAsync(write: true, async (connection, transaction) =>
        {
            foreach (var step in steps)
            {
                if (await ApplyStepAsync(connection, transaction, step, now, cancellationToken) is { } conflict)
                {
                    await transaction.RollbackAsync(cancellationToken);
                    return await RefuseAsync(connection, null, id, conflict, cancellationToken);
                }
            }
            if (!readBack)
            {
                await transaction.CommitAsync(cancellationToken);
                return TransitionResult.Committed(steps[^1].To);
            }
            var record = await LoadByIdAsync(connection, transaction, id, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return TransitionResult.Ok(record!);
        }, cancellationToken);
    }

    public async Task<byte[]?> GetArtifactAsync(Guid id, string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(name);
        await MigrateAsync(cancellationToken);
        return await RunAsync(write: false, async (connection, transaction) =>
        {
            await using var command = Command(connection, transaction, """
                SELECT ar.content FROM artifacts ar
                JOIN tasks t ON t.id = ar.task_id AND ar.attempt = t.result_attempt
                WHERE t.id = @id AND ar.name = @name
                """);
            AddId(command, "@id", id);
            Add(command, "@name", name, DbType.String);
            return await command.ExecuteScalarAsync(cancellationToken) as byte[];
        }, cancellationToken);
    }

    public async Task<IReadOnlyList<TaskRecord>> ListByStatusAsync(TaskStatus status, int limit, Guid? afterId, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await MigrateAsync(cancellationToken);
        // An afterId that no longer exists matches nothing, which ends the caller's pass rather than
        // restarting it from the oldest task.
        var condition = afterId is null
            ? "t.status = @status"
            : "t.status = @status AND t.seq > (SELECT seq FROM tasks WHERE id = @after)";
        return await RunAsync(write: false, (connection, transaction) => LoadAsync(connection, transaction, ResultRead.None, condition, command =>
        {
            Add(command, "@status", status.ToWire(), DbType.String);
            if (afterId is { } after)
            {
                AddId(command, "@after", after);
            }
            Add(command, "@limit", Math.Min(limit, MaxBatchSize), DbType.Int32);
        }, "ORDER BY t.seq LIMIT @limit", cancellationToken), cancellationToken);
    }

    public async Task<int> DeleteFinishedBeforeAsync(DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        await MigrateAsync(cancellationToken);
        return await RunAsync(write: true, async (connection, transaction) =>
        {
            // Transitions, attempts and artifacts go with their task (ON DELETE CASCADE), inside the
            // DELETE's own row locks, so a task requeued meanwhile is neither kept half nor lost.
            // Failed and timeout rows are settled: an automatic retry moves them to pending in the
            // same transaction, so what still shows failed/timeout waits only for a human.
            await using var command = Command(connection, transaction, """
                DELETE FROM tasks
                WHERE finished_at < @cutoff
                  AND status IN (@completed, @cancelled, @failed, @timeout)
                """);
            AddTime(command, "@cutoff", cutoff);
            Add(command, "@completed", TaskStatus.Completed.ToWire(), DbType.String);
            Add(command, "@cancelled", TaskStatus.Cancelled.ToWire(), DbType.String);
            Add(command, "@failed", TaskStatus.Failed.ToWire(), DbType.String);
            Add(command, "@timeout", TaskStatus.Timeout.ToWire(), DbType.String);
            var deleted = await command.ExecuteNonQueryAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return deleted;
        }, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await DisposeResourcesAsync();
        _migrationGate.Dispose();
        GC.SuppressFinalize(this);
    }

    private protected static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    private protected static void Add(DbCommand command, string name, object? value, DbType type)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.DbType = type;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
    }

    private protected static async Task ExecuteAsync(DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Both backends keep microseconds; cutting here makes what is returned equal what is stored.</summary>
    private protected static DateTimeOffset ToStored(DateTimeOffset time)
    {
        var ticks = time.UtcTicks;
        return new DateTimeOffset(ticks - (ticks % 10), TimeSpan.Zero);
    }

    private DateTimeOffset Now() => ToStored(_timeProvider.GetUtcNow());

    private static Guid ValidateSteps(IReadOnlyList<TransitionRequest> steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        if (steps.Count == 0)
        {
            throw new ArgumentException("A transition needs at least one step.", nameof(steps));
        }
        var id = steps[0].TaskId;
        foreach (var step in steps)
        {
            if (step.TaskId != id)
            {
                throw new ArgumentException("All steps of one transition must move the same task.", nameof(steps));
            }
            if (step.To == TaskStatus.Running && step.Fence is null)
            {
                throw new ArgumentException("A claim (pending → running) must carry the claim's fence.", nameof(steps));
            }
            if (step.Result is not null && !TaskStateMachine.IsFinished(step.To))
            {
                throw new ArgumentException($"Only a step that ends an attempt carries a result, not one to {step.To.ToWire()}.", nameof(steps));
            }
        }
        return id;
    }

    /// <summary>Applies one step as a conditional UPDATE; returns why it was refused, or null when it was applied.</summary>
    private async Task<TransitionConflict?> ApplyStepAsync(DbConnection connection, DbTransaction transaction, TransitionRequest step, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var set = new StringBuilder("status = @to");
        var where = "id = @id AND status = @from";
        if (step.Fence is not null)
        {
            set.Append(", fence = @fence");
            // A claim starts a new attempt, so it must come from a newer lease than any writer so far;
            // every other write may come from the current lease itself.
            where += step.To == TaskStatus.Running ? " AND fence < @fence" : " AND fence <= @fence";
        }
        if (step.To == TaskStatus.Running)
        {
            set.Append(", attempt = attempt + 1, started_at = @now, worker_id = @worker, finished_at = NULL, next_attempt_at = NULL");
        }
        else if (step.To == TaskStatus.Pending)
        {
            set.Append(", next_attempt_at = @next, finished_at = NULL");
        }
        else
        {
            set.Append(", finished_at = @now, next_attempt_at = NULL");
        }
        if (step.Result is not null)
        {
            // The right-hand side sees the row before this UPDATE; the attempt does not change here.
            set.Append(", result_attempt = attempt");
        }
        if (step.DeadLettered is not null)
        {
            set.Append(", dead_lettered = @dead");
        }
        if (step.MaxAttempts is not null)
        {
            set.Append(", max_attempts = @max_attempts");
        }

        int attempt;
        long fence;
        await using (var update = Command(connection, transaction, $"UPDATE tasks SET {set} WHERE {where} RETURNING attempt, fence"))
        {
            AddId(update, "@id", step.TaskId);
            Add(update, "@from", step.From.ToWire(), DbType.String);
            Add(update, "@to", step.To.ToWire(), DbType.String);
            Add(update, "@fence", step.Fence, DbType.Int64);
            AddTime(update, "@now", now);
            Add(update, "@worker", step.WorkerId, DbType.String);
            AddTime(update, "@next", step.NextAttemptAt);
            Add(update, "@dead", step.DeadLettered, DbType.Boolean);
            Add(update, "@max_attempts", step.MaxAttempts, DbType.Int32);
            await using var reader = await update.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                await reader.DisposeAsync();
                return await DiagnoseAsync(connection, transaction, step, cancellationToken);
            }
            attempt = reader.GetInt32(0);
            fence = reader.GetInt64(1);
        }

        if (step.Result is not null)
        {
            await RecordResultAsync(connection, transaction, step.TaskId, attempt, fence, step.Result, now, cancellationToken);
        }
        await InsertTransitionAsync(connection, transaction, step.TaskId, step.From, step.To, now, attempt, step.Reason, step.WorkerId, cancellationToken);
        return null;
    }

    /// <summary>Why a conditional UPDATE matched no row, seen from inside the same transaction.</summary>
    private async Task<TransitionConflict> DiagnoseAsync(DbConnection connection, DbTransaction transaction, TransitionRequest step, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, "SELECT status FROM tasks WHERE id = @id");
        AddId(command, "@id", step.TaskId);
        var status = await command.ExecuteScalarAsync(cancellationToken) as string;
        if (status is null)
        {
            return TransitionConflict.NotFound;
        }
        return TaskStatusNames.Parse(status) == step.From ? TransitionConflict.StaleFence : TransitionConflict.StatusMismatch;
    }

    /// <summary>Reports a refusal with the task's committed status (a write transaction is rolled back first).</summary>
    private async Task<TransitionResult> RefuseAsync(DbConnection connection, DbTransaction? transaction, Guid id, TransitionConflict conflict, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, "SELECT status FROM tasks WHERE id = @id");
        AddId(command, "@id", id);
        var status = await command.ExecuteScalarAsync(cancellationToken) as string;
        var result = status is null
            ? TransitionResult.Refused(TransitionConflict.NotFound, null)
            : TransitionResult.Refused(conflict, TaskStatusNames.Parse(status));
        Log.TransitionRefused(Logger, id, result.Conflict!.Value);
        return result;
    }

    private async Task RecordResultAsync(DbConnection connection, DbTransaction transaction, Guid id, int attempt, long fence, ExecutionResult result, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var (bounded, dropped) = ResultBounds.Apply(result, _options);
        if (dropped > 0)
        {
            Log.ArtifactsDropped(Logger, id, attempt, dropped);
        }

        // A result written again for the same attempt replaces the first one and its artifacts.
        await using (var clear = Command(connection, transaction, "DELETE FROM artifacts WHERE task_id = @id AND attempt = @attempt"))
        {
            AddId(clear, "@id", id);
            Add(clear, "@attempt", attempt, DbType.Int32);
            await clear.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (var upsert = Command(connection, transaction, """
            INSERT INTO attempts (task_id, attempt, fence, result, recorded_at) VALUES (@id, @attempt, @fence, @result, @now)
            ON CONFLICT (task_id, attempt) DO UPDATE SET fence = excluded.fence, result = excluded.result, recorded_at = excluded.recorded_at
            """))
        {
            AddId(upsert, "@id", id);
            Add(upsert, "@attempt", attempt, DbType.Int32);
            Add(upsert, "@fence", fence, DbType.Int64);
            AddJson(upsert, "@result", StoreJson.SerializeResult(bounded));
            AddTime(upsert, "@now", now);
            await upsert.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (var upsert = Command(connection, transaction, """
            INSERT INTO attempt_previews (task_id, attempt, preview) VALUES (@id, @attempt, @preview)
            ON CONFLICT (task_id, attempt) DO UPDATE SET preview = excluded.preview
            """))
        {
            AddId(upsert, "@id", id);
            Add(upsert, "@attempt", attempt, DbType.Int32);
            AddJson(upsert, "@preview", StoreJson.SerializeResult(ResultBounds.Preview(bounded)));
            await upsert.ExecuteNonQueryAsync(cancellationToken);
        }
        for (var ordinal = 0; ordinal < bounded.Artifacts.Count; ordinal++)
        {
            var artifact = bounded.Artifacts[ordinal];
            await using var insert = Command(connection, transaction, """
                INSERT INTO artifacts (task_id, attempt, ordinal, name, content) VALUES (@id, @attempt, @ordinal, @name, @content)
                """);
            AddId(insert, "@id", id);
            Add(insert, "@attempt", attempt, DbType.Int32);
            Add(insert, "@ordinal", ordinal, DbType.Int32);
            Add(insert, "@name", artifact.Name, DbType.String);
            Add(insert, "@content", artifact.Content, DbType.Binary);
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    private async Task InsertTransitionAsync(DbConnection connection, DbTransaction transaction, Guid id, TaskStatus? from, TaskStatus to, DateTimeOffset at, int attempt, string reason, string? workerId, CancellationToken cancellationToken)
    {
        // The per-task sequence is safe to compute here: the caller holds the task row (it just
        // inserted or updated it), so no other transaction appends to this task meanwhile.
        await using var command = Command(connection, transaction, """
            INSERT INTO transitions (task_id, seq, from_status, to_status, at, attempt, reason, worker_id)
            VALUES (@id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM transitions WHERE task_id = @id), @from, @to, @at, @attempt, @reason, @worker)
            """);
        AddId(command, "@id", id);
        Add(command, "@from", from?.ToWire(), DbType.String);
        Add(command, "@to", to.ToWire(), DbType.String);
        AddTime(command, "@at", at);
        Add(command, "@attempt", attempt, DbType.Int32);
        Add(command, "@reason", reason, DbType.String);
        Add(command, "@worker", workerId, DbType.String);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<TaskRecord?> LoadByIdAsync(DbConnection connection, DbTransaction transaction, Guid id, CancellationToken cancellationToken)
    {
        var rows = await LoadAsync(connection, transaction, ResultRead.Whole, "t.id = @id", command => AddId(command, "@id", id), "", cancellationToken);
        return rows.Count == 0 ? null : rows[0];
    }

    private async Task<IReadOnlyList<TaskRecord>> LoadAsync(
        DbConnection connection, DbTransaction transaction, ResultRead read, string condition, Action<DbCommand> bind, string orderAndLimit, CancellationToken cancellationToken)
    {
        var rows = await ReadTasksAsync(connection, transaction, read, condition, bind, orderAndLimit, cancellationToken);
        return await WithDetailsAsync(connection, transaction, rows.Select(r => r.Record).ToList(), cancellationToken);
    }

    /// <summary>
    /// The task rows alone (with the latest result as <paramref name="read"/> says, but not its
    /// artifacts), each with its sequence number.
    /// </summary>
    private async Task<List<(long Seq, TaskRecord Record)>> ReadTasksAsync(
        DbConnection connection, DbTransaction transaction, ResultRead read, string condition, Action<DbCommand> bind, string orderAndLimit, CancellationToken cancellationToken)
    {
        var select = read switch
        {
            ResultRead.Whole => SelectTasks,
            ResultRead.Preview => SelectTaskPreviews,
            ResultRead.None => SelectTasksWithoutResults,
            _ => throw new ArgumentOutOfRangeException(nameof(read)),
        };
        var rows = new List<(long Seq, TaskRecord Record)>();
        await using (var command = Command(connection, transaction, $"{select} WHERE {condition} {orderAndLimit}"))
        {
            bind(command);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var task = ReadTask(reader);
                // A full result read in place of a missing preview is cut here; a stored preview is already cut.
                rows.Add((reader.GetInt64(0), read == ResultRead.Preview && task.Result is { } result ? task with { Result = ResultBounds.Preview(result) } : task));
            }
        }
        return rows;
    }

    /// <summary>
    /// Adds transitions and result artifacts to <paramref name="tasks"/> with one query for all
    /// their transitions and one for their artifacts (when any has a result), never one per task.
    /// </summary>
    private async Task<IReadOnlyList<TaskRecord>> WithDetailsAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<TaskRecord> tasks, CancellationToken cancellationToken)
    {
        if (tasks.Count == 0)
        {
            return tasks;
        }

        var ids = string.Join(", ", Enumerable.Range(0, tasks.Count).Select(i => $"@id{i}"));
        void BindIds(DbCommand command)
        {
            for (var i = 0; i < tasks.Count; i++)
            {
                AddId(command, $"@id{i}", tasks[i].Id);
            }
        }

        var transitions = new Dictionary<Guid, List<TaskTransition>>();
        await using (var command = Command(connection, transaction, $"""
            SELECT task_id, from_status, to_status, at, attempt, reason, worker_id FROM transitions
            WHERE task_id IN ({ids}) ORDER BY task_id, seq
            """))
        {
            BindIds(command);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var taskId = ReadId(reader, 0);
                if (!transitions.TryGetValue(taskId, out var list))
                {
                    transitions[taskId] = list = [];
                }
                list.Add(new TaskTransition(
                    reader.IsDBNull(1) ? null : TaskStatusNames.Parse(reader.GetString(1)),
                    TaskStatusNames.Parse(reader.GetString(2)),
                    ReadTime(reader, 3),
                    reader.GetInt32(4),
                    reader.GetString(5),
                    reader.IsDBNull(6) ? null : reader.GetString(6)));
            }
        }

        var artifacts = new Dictionary<Guid, List<Artifact>>();
        if (tasks.Any(t => t.Result is not null))
        {
            await using var command = Command(connection, transaction, $"""
                SELECT ar.task_id, ar.name, ar.content FROM artifacts ar
                JOIN tasks t ON t.id = ar.task_id AND ar.attempt = t.result_attempt
                WHERE ar.task_id IN ({ids}) ORDER BY ar.task_id, ar.ordinal
                """);
            BindIds(command);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var taskId = ReadId(reader, 0);
                if (!artifacts.TryGetValue(taskId, out var list))
                {
                    artifacts[taskId] = list = [];
                }
                list.Add(new Artifact(reader.GetString(1), (byte[])reader.GetValue(2)));
            }
        }

        return tasks.Select(task => task with
        {
            Transitions = transitions.GetValueOrDefault(task.Id) ?? [],
            Result = task.Result is null ? null : task.Result with { Artifacts = artifacts.GetValueOrDefault(task.Id) ?? [] },
        }).ToList();
    }

    private TaskRecord ReadTask(DbDataReader reader) => new()
    {
        Id = ReadId(reader, 1),
        Spec = StoreJson.DeserializeSpec(reader.GetString(2)),
        Status = TaskStatusNames.Parse(reader.GetString(3)),
        Attempt = reader.GetInt32(4),
        MaxAttempts = reader.GetInt32(5),
        Fence = reader.GetInt64(6),
        IdempotencyKey = reader.IsDBNull(7) ? null : reader.GetString(7),
        WorkerId = reader.IsDBNull(8) ? null : reader.GetString(8),
        CreatedAt = ReadTime(reader, 9),
        StartedAt = reader.IsDBNull(10) ? null : ReadTime(reader, 10),
        FinishedAt = reader.IsDBNull(11) ? null : ReadTime(reader, 11),
        NextAttemptAt = reader.IsDBNull(12) ? null : ReadTime(reader, 12),
        DeadLettered = reader.GetBoolean(13),
        Result = reader.IsDBNull(14) ? null : StoreJson.DeserializeResult(reader.GetString(14)),
    };
}

/// <summary>What a read of tasks brings of each one's latest result.</summary>
internal enum ResultRead
{
    /// <summary>The whole result, for one task (a read or a write's answer).</summary>
    Whole,
    /// <summary>Outputs cut to their previews (<see cref="ResultBounds.Preview"/>), for a listing.</summary>
    Preview,
    /// <summary>No result (and so no artifacts either).</summary>
    None,
}

/// <summary>One schema step. Versions only grow; a shipped migration is never edited.</summary>
internal sealed record Migration(int Version, string Sql);
