using StackExchange.Redis;

namespace Runbox.Queue;

/// <summary>
/// The key names of one queue. <see cref="Static"/> is the KEYS array every queue script receives,
/// in the order Lua/common.lua names them; per-task and per-user keys are built inside the scripts
/// from <see cref="Prefix"/>, which carries the same hash tag.
/// </summary>
internal sealed class QueueKeys
{
    public QueueKeys(string keyPrefix)
    {
        Prefix = "{" + keyPrefix + "}:";
        Marker = Prefix + "marker";
        Static =
        [
            Prefix + "eligible",
            Prefix + "users",
            Prefix + "leases",
            Prefix + "delayed",
            Prefix + "dead",
            Prefix + "seq",
            Marker,
            Prefix + "transitions",
            Prefix + "counters",
            Prefix + "workers",
            Prefix + "maintainer",
        ];
        CancelChannel = RedisChannel.Literal(Prefix + "cancel");
        EventsChannel = RedisChannel.Literal(Prefix + "events");
    }

    public string Prefix { get; }

    public RedisKey[] Static { get; }

    public RedisKey Marker { get; }

    public RedisKey Users => Static[1];

    public RedisKey Leases => Static[2];

    public RedisKey Transitions => Static[7];

    public RedisChannel CancelChannel { get; }

    /// <summary>Carries the task id of every published event, so blocked readers wake.</summary>
    public RedisChannel EventsChannel { get; }

    public RedisKey Task(Guid taskId) => Prefix + "t:" + taskId.ToString("D");

    public RedisKey TaskEvents(Guid taskId) => Prefix + "ev:" + taskId.ToString("D");
}
