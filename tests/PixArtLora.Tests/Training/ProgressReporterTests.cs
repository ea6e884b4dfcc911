using PixArtLora.Training.Progress;

namespace PixArtLora.Tests.Training;

public class ProgressReporterTests
{
    static ProgressUpdate At(long step, double loss = 1.0, long total = 25) => new(step, total, 1 + (step - 1) / 10, 3, loss, 1e-4);

    [Fact]
    public void MeterSmoothsLossAndPaceWithBiasCorrection()
    {
        var meter = new ProgressMeter(smoothing: 0.9);
        meter.Start(0, TimeSpan.Zero);
        var s1 = meter.Update(At(1, loss: 1.0, total: 100), TimeSpan.FromSeconds(2));
        Assert.Equal(1.0, s1.SmoothedLoss, 1e-12);           // debiased: the first value itself
        Assert.Equal(2.0, s1.SecondsPerStep!.Value, 1e-12);
        var s2 = meter.Update(At(2, loss: 3.0, total: 100), TimeSpan.FromSeconds(4));
        // (0.9 * 0.1 + 0.1 * 3) / (1 - 0.81) = 0.39 / 0.19
        Assert.Equal(0.39 / 0.19, s2.SmoothedLoss, 1e-12);
        Assert.Equal(2.0, s2.SecondsPerStep!.Value, 1e-12);
        Assert.Equal(TimeSpan.FromSeconds(98 * 2.0), s2.Remaining);
        Assert.Equal(TimeSpan.FromSeconds(4), s2.Elapsed);
    }

    [Fact]
    public void LineShowsEveryField()
    {
        var meter = new ProgressMeter();
        meter.Start(0, TimeSpan.Zero);
        var s = meter.Update(new ProgressUpdate(120, 1000, 2, 10, 0.12345, 1e-4), TimeSpan.FromSeconds(120 * 1.5));
        Assert.Equal("step 120/1000 (12%) | epoch 2/10 | loss 0.1235 (avg 0.1235) | lr 1.00e-04 | 1.50 s/step | ETA 0:22:00", s.ToLine());
    }

    [Fact]
    public void PlainModePrintsPeriodicLinesAndTheLastStep()
    {
        var clock = TimeSpan.Zero;
        var output = new StringWriter();
        var reporter = new TextProgressReporter(output, live: false, interval: TimeSpan.FromSeconds(10), clock: () => clock);
        reporter.Start(0, 25);
        for (long step = 1; step <= 25; step++)
        {
            clock += TimeSpan.FromSeconds(1);
            reporter.Report(At(step));
            if (step == 12) reporter.Message("saved checkpoint-12");
        }
        reporter.Finish("done");
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        Assert.DoesNotContain("\r", output.ToString().Replace(Environment.NewLine, "\n"));
        Assert.Equal(new[] { "step 1/25", "step 11/25", "saved checkpoint-12", "step 21/25", "step 25/25", "done" },
            lines.Select(l => l.StartsWith("step") ? l[..l.IndexOf(" (", StringComparison.Ordinal)] : l));
        Assert.EndsWith("ETA 0:00:00", lines[4]);
    }

    [Fact]
    public void LiveModeRedrawsOneLineWithABar()
    {
        var clock = TimeSpan.Zero;
        var output = new StringWriter();
        var reporter = new TextProgressReporter(output, live: true, interval: TimeSpan.Zero, clock: () => clock);
        reporter.Start(10, 20); // resumed at step 10
        for (long step = 11; step <= 20; step++)
        {
            clock += TimeSpan.FromSeconds(0.5);
            reporter.Report(At(step, total: 20));
        }
        reporter.Finish();
        string text = output.ToString();
        Assert.StartsWith("resuming at step 10/20", text);
        Assert.Contains("\r[##################......] step 15/20", text);
        Assert.Contains("\r[########################] step 20/20", text);
        Assert.Contains("0.50 s/step", text);
        Assert.EndsWith(Environment.NewLine, text);
    }
}
