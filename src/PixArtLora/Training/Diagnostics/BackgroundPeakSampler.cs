namespace PixArtLora.Training.Diagnostics;

/// <summary>
/// Polls a memory reading on a background thread and keeps its highest value, for figures that have no peak counter
/// of their own (NVML reports device memory in use now, not its high-water mark). A peak shorter than the interval
/// can be missed, so the result is a lower bound of the true peak.
/// </summary>
public sealed class BackgroundPeakSampler : IDisposable
{
    readonly Func<long?> _read;
    readonly TimeSpan _interval;
    readonly Thread _thread;
    readonly ManualResetEventSlim _stop = new();
    long _peak = long.MinValue;
    int _samples;
    bool _disposed;

    /// <param name="read">The reading; null when it is not available at that moment (ignored).</param>
    /// <param name="interval">Time between readings.</param>
    public BackgroundPeakSampler(Func<long?> read, TimeSpan interval)
    {
        if (interval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(interval), interval, "expected a positive interval");
        _read = read;
        _interval = interval;
        Sample();
        _thread = new Thread(Loop) { IsBackground = true, Name = "memory peak sampler" };
        _thread.Start();
    }

    /// <summary>The highest reading so far, or null when no reading was available.</summary>
    public long? Peak => Volatile.Read(ref _samples) == 0 ? null : Interlocked.Read(ref _peak);

    /// <summary>Readings taken so far (one at construction, one at <see cref="Dispose"/>, the rest in between).</summary>
    public int Samples => Volatile.Read(ref _samples);

    void Loop()
    {
        while (!_stop.Wait(_interval)) Sample();
    }

    void Sample()
    {
        if (_read() is not long value) return;
        long seen = Interlocked.Read(ref _peak);
        while (value > seen)
        {
            long previous = Interlocked.CompareExchange(ref _peak, value, seen);
            if (previous == seen) break;
            seen = previous;
        }
        Interlocked.Increment(ref _samples);
    }

    /// <summary>Stops polling after one last reading; <see cref="Peak"/> stays readable.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stop.Set();
        _thread.Join();
        Sample();
        _stop.Dispose();
    }
}
