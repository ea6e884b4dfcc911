using System.Runtime.InteropServices;

namespace PixArtLora.Training;

/// <summary>
/// Turns Ctrl-C (SIGINT) and SIGTERM into a flag the training loop checks after each step, so the run can
/// finish the step, write a checkpoint and exit cleanly. A second signal is not intercepted and ends the
/// process at once, the usual escape when the graceful path hangs.
/// </summary>
public sealed class StopRequest : IDisposable
{
    readonly List<PosixSignalRegistration> _registrations = new();
    readonly CancellationTokenSource _cts = new();
    int _signals;

    StopRequest() { }

    /// <summary>Starts listening for SIGINT and SIGTERM until disposed.</summary>
    public static StopRequest Install()
    {
        var stop = new StopRequest();
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
            stop._registrations.Add(PosixSignalRegistration.Create(signal, stop.OnSignal));
        return stop;
    }

    /// <summary>A request that only code can trigger (tests, embedding applications).</summary>
    public static StopRequest Manual() => new();

    /// <summary>True once a stop was requested.</summary>
    public bool IsRequested => _cts.IsCancellationRequested;

    /// <summary>What asked to stop ("SIGINT", "SIGTERM" or the reason given to <see cref="Request"/>); null before.</summary>
    public string? Reason { get; private set; }

    /// <summary>Cancelled when a stop is requested (for waits inside a step, e.g. data loading).</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>Asks the loop to stop after the current step.</summary>
    public void Request(string reason)
    {
        Reason ??= reason;
        _cts.Cancel();
    }

    void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref _signals) > 1) return; // second signal: default action (terminate)
        context.Cancel = true;
        Request(context.Signal.ToString());
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _registrations.Clear();
        _cts.Dispose();
    }
}
