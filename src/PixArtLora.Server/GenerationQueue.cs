using Microsoft.Extensions.Logging;

namespace PixArtLora.Server;

/// <summary>The queue takes no more jobs: it is at its limit, or the server is stopping (sent as 503).</summary>
public sealed class QueueFullException(string message) : Exception(message);

/// <summary>
/// First come, first served: one worker runs one job at a time on the backend (a model fits in memory once), the
/// others wait in order and learn their position whenever it changes. Cancelling a waiting job removes it; cancelling
/// the running one cancels the backend's token.
/// </summary>
internal sealed class GenerationQueue : IAsyncDisposable
{
    // Finished jobs stay queryable for a while (a page that reloads reconnects to its job), then are forgotten;
    // their images remain in the result store.
    const int FinishedJobsKept = 200;

    readonly IGenerationBackend _backend;
    readonly ResultStore _store;
    readonly RequestLimits _limits;
    readonly ILogger _logger;
    readonly object _gate = new();
    readonly LinkedList<GenerationJob> _waiting = new();
    readonly Dictionary<string, GenerationJob> _jobs = new(StringComparer.Ordinal);
    readonly Queue<string> _finishedOrder = new();
    readonly SemaphoreSlim _wake = new(0);
    readonly CancellationTokenSource _stopping = new();
    readonly Task _worker;
    GenerationJob? _running;
    bool _disposed;

    public GenerationQueue(IGenerationBackend backend, ResultStore store, RequestLimits limits, ILogger logger)
    {
        _backend = backend;
        _store = store;
        _limits = limits;
        _logger = logger;
        _worker = Task.Run(WorkAsync);
    }

    /// <summary>Adds a job at the end of the queue; throws <see cref="QueueFullException"/> when too many wait.</summary>
    public GenerationJob Enqueue(GenerationRequest request)
    {
        var job = new GenerationJob(Guid.NewGuid().ToString("N")[..12], request, DateTimeOffset.UtcNow, _stopping.Token);
        lock (_gate)
        {
            if (_disposed) throw new QueueFullException("the server is shutting down");
            if (_waiting.Count >= _limits.MaxQueuedJobs)
                throw new QueueFullException($"the queue is full ({_waiting.Count} jobs waiting); try again when one has finished");
            _waiting.AddLast(job);
            _jobs[job.Id] = job;
            Renumber();
        }
        _wake.Release();
        return job;
    }

    /// <summary>Whether a job is running and how many wait behind it.</summary>
    public (bool Running, int Waiting) Status()
    {
        lock (_gate) return (_running != null, _waiting.Count);
    }

    public GenerationJob? Find(string id)
    {
        lock (_gate) return _jobs.GetValueOrDefault(id);
    }

    /// <summary>Cancels job <paramref name="id"/>; returns null when no such job is known. Finished jobs stay as they are.</summary>
    public GenerationJob? Cancel(string id)
    {
        GenerationJob? job;
        bool wasWaiting;
        lock (_gate)
        {
            if (!_jobs.TryGetValue(id, out job)) return null;
            wasWaiting = _waiting.Remove(job);
            if (wasWaiting)
            {
                Renumber();
                Retire(job);
            }
        }
        if (wasWaiting)
        {
            job.MarkCancelled();
            job.ReleaseCancellation();
        }
        else if (!job.IsFinished) job.RequestCancellation(); // the worker marks it cancelled when the backend stops
        return job;
    }

    async Task WorkAsync()
    {
        while (true)
        {
            try { await _wake.WaitAsync(_stopping.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }

            GenerationJob? job;
            lock (_gate)
            {
                job = _waiting.First?.Value;
                if (job == null) continue; // its wake-up was for a job cancelled while waiting
                _waiting.RemoveFirst();
                _running = job;
                job.MarkRunning();
                Renumber();
            }
            await RunAsync(job).ConfigureAwait(false);
            job.ReleaseCancellation();
            lock (_gate)
            {
                _running = null;
                Retire(job);
                Renumber();
            }
        }
    }

    async Task RunAsync(GenerationJob job)
    {
        var token = job.Token;
        try
        {
            token.ThrowIfCancellationRequested();
            var progress = new JobProgress(job);
            var images = await Task.Run(() => _backend.GenerateAsync(job.Request, progress, token), CancellationToken.None).ConfigureAwait(false);
            // A cancel that arrives after the last step loses the race: the images exist, so they are kept.
            var results = _store.Save(job.Id, _backend.Info.Name, job.Request, images, DateTimeOffset.UtcNow);
            job.Complete(results);
            _logger.LogInformation("job {Job}: {Count} image(s) saved to {Folder}", job.Id, results.Count, _store.Directory);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            job.MarkCancelled();
            _logger.LogInformation("job {Job}: cancelled", job.Id);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "job {Job} failed", job.Id);
            job.Fail($"generation failed: {e.Message}");
        }
    }

    // Positions count the jobs ahead, the running one included.
    void Renumber()
    {
        int ahead = _running != null ? 1 : 0;
        foreach (var waiting in _waiting) waiting.SetPosition(ahead++);
    }

    void Retire(GenerationJob job)
    {
        _finishedOrder.Enqueue(job.Id);
        while (_finishedOrder.Count > FinishedJobsKept) _jobs.Remove(_finishedOrder.Dequeue());
    }

    public async ValueTask DisposeAsync()
    {
        List<GenerationJob> waiting;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            waiting = _waiting.ToList();
            _waiting.Clear();
        }
        _stopping.Cancel(); // also cancels the running job: every job token is linked to this one
        foreach (var job in waiting)
        {
            job.MarkCancelled();
            job.ReleaseCancellation();
        }
        try { await _worker.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false); }
        catch (TimeoutException) { _logger.LogWarning("the running job did not stop within 30 s of cancellation; leaving it behind"); }
    }

    /// <summary>Passes the backend's reports straight to the job (no synchronization context: the backend may report from any thread).</summary>
    sealed class JobProgress(GenerationJob job) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => job.ReportProgress(value);
    }
}
