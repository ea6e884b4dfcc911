using System.Globalization;

namespace PixArtLora.Training.Progress;

/// <summary>The numbers a progress display shows at one moment.</summary>
public sealed record ProgressSnapshot(
    long Step, long TotalSteps, long Epoch, long TotalEpochs,
    double Loss, double SmoothedLoss, double LearningRate,
    double? SecondsPerStep, TimeSpan? Remaining, TimeSpan Elapsed)
{
    /// <summary>One line: <c>step 120/1000 (12%) | epoch 2/10 | loss 0.1234 (avg 0.1301) | lr 1.00e-04 | 1.23 s/step | ETA 0:18:02</c>.</summary>
    public string ToLine()
    {
        var c = CultureInfo.InvariantCulture;
        var parts = new List<string>
        {
            TotalSteps > 0
                ? string.Create(c, $"step {Step}/{TotalSteps} ({100.0 * Step / TotalSteps:F0}%)")
                : string.Create(c, $"step {Step}"),
            TotalEpochs > 0 ? string.Create(c, $"epoch {Epoch}/{TotalEpochs}") : string.Create(c, $"epoch {Epoch}"),
            string.Create(c, $"loss {Loss:F4} (avg {SmoothedLoss:F4})"),
            string.Create(c, $"lr {LearningRate:0.00e+00}"),
        };
        if (SecondsPerStep is double sps)
            parts.Add(sps >= 0.1 ? string.Create(c, $"{sps:F2} s/step") : string.Create(c, $"{1.0 / sps:F1} steps/s"));
        parts.Add(Remaining is TimeSpan r ? "ETA " + FormatDuration(r) : "ETA --");
        return string.Join(" | ", parts);
    }

    /// <summary>h:mm:ss (or d.hh:mm:ss beyond a day).</summary>
    public static string FormatDuration(TimeSpan t) => t.TotalDays >= 1
        ? t.ToString(@"d\.hh\:mm\:ss", CultureInfo.InvariantCulture)
        : string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}:{t.Minutes:D2}:{t.Seconds:D2}");
}

/// <summary>
/// Turns per-step reports into displayable statistics: the loss smoothed by a bias-corrected exponential
/// moving average (so early values are not pulled towards zero), seconds per step smoothed the same way,
/// and the time left at that pace. Time comes from the caller, so tests can drive it.
/// </summary>
public sealed class ProgressMeter
{
    readonly double _beta;
    long _startStep, _lastStep, _updates;
    double _lossAverage, _secondsAverage;
    TimeSpan _startTime, _lastTime;

    /// <param name="smoothing">Weight of the past in both averages (0: no smoothing; default 0.9).</param>
    public ProgressMeter(double smoothing = 0.9)
    {
        if (smoothing is < 0 or >= 1) throw new ArgumentException($"smoothing must be in [0, 1), got {smoothing}");
        _beta = smoothing;
    }

    public void Start(long startStep, TimeSpan now)
    {
        _startStep = _lastStep = startStep;
        _startTime = _lastTime = now;
        _updates = 0;
        _lossAverage = _secondsAverage = 0;
    }

    public ProgressSnapshot Update(ProgressUpdate u, TimeSpan now)
    {
        _updates++;
        double correction = 1.0 - Math.Pow(_beta, _updates);
        _lossAverage = _beta * _lossAverage + (1 - _beta) * u.Loss;
        double? secondsPerStep = null;
        long steps = u.Step - _lastStep;
        if (steps > 0)
        {
            double perStep = (now - _lastTime).TotalSeconds / steps;
            _secondsAverage = _beta * _secondsAverage + (1 - _beta) * perStep;
            secondsPerStep = _secondsAverage / correction;
        }
        else if (_secondsAverage > 0) secondsPerStep = _secondsAverage / correction;
        _lastStep = u.Step;
        _lastTime = now;
        TimeSpan? remaining = secondsPerStep is double s && u.TotalSteps > 0
            ? TimeSpan.FromSeconds(Math.Max(0, u.TotalSteps - u.Step) * s) : null;
        return new ProgressSnapshot(u.Step, u.TotalSteps, u.Epoch, u.TotalEpochs, u.Loss, _lossAverage / correction,
            u.LearningRate, secondsPerStep, remaining, now - _startTime);
    }
}
