namespace PixArtLora.Server;

/// <summary>Where a job is: waiting in the queue, running, or finished one of three ways.</summary>
public enum JobStatus { Queued, Running, Completed, Cancelled, Failed }

/// <summary>
/// A job as the API reports it. <see cref="Position"/> counts the jobs ahead of this one, the running one included
/// (0 while running, null once finished). <see cref="Version"/> grows with every change, so a listener can tell
/// whether anything happened since it last looked.
/// </summary>
public sealed record JobSnapshot(
    string Id,
    JobStatus Status,
    int? Position,
    int Step,
    int TotalSteps,
    string? Stage,
    string? Error,
    GenerationRequest Request,
    IReadOnlyList<StoredResult> Results,
    DateTimeOffset CreatedAt,
    long Version)
{
    public bool IsFinished => Status is JobStatus.Completed or JobStatus.Cancelled or JobStatus.Failed;
}

/// <summary>
/// One request on its way through the queue. All state changes go through <see cref="Update"/>, which bumps the
/// version and wakes every waiting listener (the server-sent-event streams).
/// </summary>
internal sealed class GenerationJob
{
    readonly object _gate = new();
    JobStatus _status = JobStatus.Queued;
    int? _position;
    GenerationProgress _progress;
    string? _error;
    IReadOnlyList<StoredResult> _results = Array.Empty<StoredResult>();
    long _version;
    TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Id { get; }
    public GenerationRequest Request { get; }
    public DateTimeOffset CreatedAt { get; }
    readonly object _cancellationGate = new();
    readonly CancellationTokenSource _cancellation;
    bool _cancellationReleased;

    public GenerationJob(string id, GenerationRequest request, DateTimeOffset createdAt, CancellationToken serverStopping)
    {
        Id = id;
        Request = request;
        CreatedAt = createdAt;
        _cancellation = CancellationTokenSource.CreateLinkedTokenSource(serverStopping);
        Token = _cancellation.Token;
        _progress = new GenerationProgress(0, request.Steps);
    }

    /// <summary>Cancelled by <see cref="RequestCancellation"/> or when the server stops.</summary>
    public CancellationToken Token { get; }

    public void RequestCancellation()
    {
        lock (_cancellationGate)
            if (!_cancellationReleased) _cancellation.Cancel();
    }

    /// <summary>Once the job is over: drops its link to the server's token, which would otherwise collect one per job.</summary>
    public void ReleaseCancellation()
    {
        lock (_cancellationGate)
        {
            if (_cancellationReleased) return;
            _cancellationReleased = true;
            _cancellation.Dispose();
        }
    }

    public JobSnapshot Snapshot()
    {
        lock (_gate)
            return new JobSnapshot(Id, _status, _position, _progress.Step, _progress.TotalSteps, _progress.Stage, _error,
                Request, _results, CreatedAt, _version);
    }

    public bool IsFinished { get { lock (_gate) return _status is JobStatus.Completed or JobStatus.Cancelled or JobStatus.Failed; } }

    public void SetPosition(int position) => Update(() =>
    {
        if (_status != JobStatus.Queued || _position == position) return false;
        _position = position;
        return true;
    });

    public void MarkRunning() => Update(() => { _status = JobStatus.Running; _position = 0; return true; });

    public void ReportProgress(GenerationProgress progress) => Update(() =>
    {
        if (_status != JobStatus.Running || progress == _progress) return false;
        _progress = progress;
        return true;
    });

    public void Complete(IReadOnlyList<StoredResult> results) => Finish(JobStatus.Completed, null, results);
    public void MarkCancelled() => Finish(JobStatus.Cancelled, null, null);
    public void Fail(string error) => Finish(JobStatus.Failed, error, null);

    void Finish(JobStatus status, string? error, IReadOnlyList<StoredResult>? results) => Update(() =>
    {
        if (_status is JobStatus.Completed or JobStatus.Cancelled or JobStatus.Failed) return false;
        _status = status;
        _position = null;
        _error = error;
        if (results != null) _results = results;
        if (status == JobStatus.Completed) _progress = _progress with { Step = _progress.TotalSteps, Stage = null };
        return true;
    });

    /// <summary>
    /// Completes when the job's version passes <paramref name="seenVersion"/>; returns false if
    /// <paramref name="timeout"/> elapses first (the caller then sends a keep-alive).
    /// </summary>
    public async Task<bool> WaitForChangeAsync(long seenVersion, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task changed;
        lock (_gate)
        {
            if (_version != seenVersion) return true;
            changed = _changed.Task;
        }
        try
        {
            await changed.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    void Update(Func<bool> mutate)
    {
        TaskCompletionSource? wake = null;
        lock (_gate)
        {
            if (!mutate()) return;
            _version++;
            wake = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        wake.TrySetResult();
    }
}
