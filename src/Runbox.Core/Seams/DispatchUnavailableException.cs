namespace Runbox.Core.Seams;

/// <summary>
/// The dispatch plane (Redis) could not be reached or did not answer in time. Requests that need it get a 503
/// with Retry-After: what the store holds stands, and the caller should come back, not count it as a failure.
/// </summary>
public sealed class DispatchUnavailableException(string message, Exception innerException) : Exception(message, innerException);
