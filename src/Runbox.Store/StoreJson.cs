using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Runbox.Core.Execution;
using Runbox.Core.Retry;
using Runbox.Core.Tasks;

namespace Runbox.Store;

/// <summary>
/// How specs and results are kept as JSON inside the store. This format is internal to the store,
/// but it outlives any one build, so it is pinned here: snake_case names, enums as snake_case
/// strings, durations as (possibly fractional) milliseconds that convert back to the exact tick.
/// Text is written as itself: the default encoder's \uXXXX for markup, quotes and every non-ASCII
/// character made a stored output up to six times its size. Control characters (NUL among them)
/// are still escaped, which PostgreSQL's json column needs. Rows written escaped read back the same.
/// </summary>
internal static class StoreJson
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        // The JSON never reaches a browser or an HTML page from here, so HTML-safe escaping buys nothing.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters =
        {
            new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false),
            new MillisecondsConverter(),
            new ReadOnlySetConverter<FailureKind>(),
        },
    };

    public static string SerializeSpec(TaskSpec spec) => JsonSerializer.Serialize(spec, Options);

    public static TaskSpec DeserializeSpec(string json) =>
        JsonSerializer.Deserialize<TaskSpec>(json, Options) ?? throw new JsonException("A stored task spec is null.");

    /// <summary>Artifacts are rows of their own, so the result's JSON never carries their bytes.</summary>
    public static string SerializeResult(ExecutionResult result) =>
        JsonSerializer.Serialize(result with { Artifacts = [] }, Options);

    public static ExecutionResult DeserializeResult(string json) =>
        JsonSerializer.Deserialize<ExecutionResult>(json, Options) ?? throw new JsonException("A stored result is null.");

    private sealed class MillisecondsConverter : JsonConverter<TimeSpan>
    {
        public override TimeSpan Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            TimeSpan.FromTicks(decimal.ToInt64(reader.GetDecimal() * TimeSpan.TicksPerMillisecond));

        // decimal, not double: a tick is 0.0001 ms, which double cannot always carry exactly.
        public override void Write(Utf8JsonWriter writer, TimeSpan value, JsonSerializerOptions options) =>
            writer.WriteNumberValue((decimal)value.Ticks / TimeSpan.TicksPerMillisecond);
    }

    /// <summary>System.Text.Json cannot create an <see cref="IReadOnlySet{T}"/> (RetryPolicy.On) by itself.</summary>
    private sealed class ReadOnlySetConverter<T> : JsonConverter<IReadOnlySet<T>>
    {
        public override IReadOnlySet<T> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            JsonSerializer.Deserialize<HashSet<T>>(ref reader, options) ?? throw new JsonException("A stored set is null.");

        public override void Write(Utf8JsonWriter writer, IReadOnlySet<T> value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, value.AsEnumerable(), options);
    }
}
