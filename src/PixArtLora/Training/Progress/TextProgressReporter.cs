using System.Diagnostics;

namespace PixArtLora.Training.Progress;

/// <summary>
/// A plain-text <see cref="ITrainingProgress"/>. In live mode (a terminal) it redraws one line with a bar
/// using carriage returns; otherwise (redirected output, CI logs) it prints a full line at the first step,
/// then at most every <c>interval</c>, and at the last step, so logs stay short and readable.
/// </summary>
public sealed class TextProgressReporter : ITrainingProgress
{
    readonly TextWriter _out;
    readonly bool _live;
    readonly TimeSpan _interval;
    readonly Func<TimeSpan> _clock;
    readonly ProgressMeter _meter = new();
    TimeSpan _lastPrinted = TimeSpan.MinValue;
    int _liveWidth;
    bool _printedAny;

    /// <param name="writer">Where to write.</param>
    /// <param name="live">Redraw a single line (only sensible on a terminal).</param>
    /// <param name="interval">Plain mode: least time between two lines (default 10 s). Live mode: least time between redraws (default 0.2 s).</param>
    /// <param name="clock">Elapsed-time source (tests pass their own).</param>
    public TextProgressReporter(TextWriter writer, bool live, TimeSpan? interval = null, Func<TimeSpan>? clock = null)
    {
        _out = writer;
        _live = live;
        _interval = interval ?? (live ? TimeSpan.FromSeconds(0.2) : TimeSpan.FromSeconds(10));
        if (clock == null)
        {
            var sw = Stopwatch.StartNew();
            clock = () => sw.Elapsed;
        }
        _clock = clock;
    }

    /// <summary>Writes to standard output: live when it is a terminal, plain lines when redirected.</summary>
    public static TextProgressReporter ForConsole() => new(Console.Out, live: !Console.IsOutputRedirected);

    public ProgressSnapshot? Last { get; private set; }

    public void Start(long startStep, long totalSteps)
    {
        _meter.Start(startStep, _clock());
        if (startStep > 0) WriteLine($"resuming at step {startStep}/{totalSteps}");
    }

    public void Report(ProgressUpdate update)
    {
        var now = _clock();
        Last = _meter.Update(update, now);
        bool last = update.TotalSteps > 0 && update.Step >= update.TotalSteps;
        if (_printedAny && !last && now - _lastPrinted < _interval) return;
        _lastPrinted = now;
        _printedAny = true;
        if (_live) Redraw(Bar(Last) + " " + Last.ToLine());
        else _out.WriteLine(Last.ToLine());
        _out.Flush();
    }

    public void Message(string line) => WriteLine(line);

    public void Finish(string? summary = null)
    {
        if (_live && _liveWidth > 0) { _out.WriteLine(); _liveWidth = 0; }
        if (summary != null) _out.WriteLine(summary);
        _out.Flush();
    }

    void WriteLine(string line)
    {
        if (_live && _liveWidth > 0)
        {
            _out.Write('\r' + new string(' ', _liveWidth) + '\r');
            _out.WriteLine(line);
            if (Last != null) Redraw(Bar(Last) + " " + Last.ToLine());
        }
        else _out.WriteLine(line);
        _out.Flush();
    }

    void Redraw(string text)
    {
        string padded = text.Length < _liveWidth ? text + new string(' ', _liveWidth - text.Length) : text;
        _out.Write('\r' + padded);
        _liveWidth = text.Length;
    }

    static string Bar(ProgressSnapshot s, int width = 24)
    {
        double fraction = s.TotalSteps > 0 ? Math.Clamp((double)s.Step / s.TotalSteps, 0, 1) : 0;
        int filled = (int)Math.Round(fraction * width);
        return "[" + new string('#', filled) + new string('.', width - filled) + "]";
    }

    public void Dispose() => Finish();
}
