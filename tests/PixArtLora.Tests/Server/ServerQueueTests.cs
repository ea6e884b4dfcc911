using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using PixArtLora.Server;

namespace PixArtLora.Tests.Server;

/// <summary>Progress events, cancellation and the FIFO queue, on a real loopback server.</summary>
public class ServerQueueTests
{
    static string Id(JsonElement job) => job.GetProperty("id").GetString()!;
    static string Status(JsonElement job) => job.GetProperty("status").GetString()!;

    [Fact]
    public async Task EventsReportEveryStageUpToCompletion()
    {
        var backend = new PatternBackend { StepDelay = TimeSpan.FromMilliseconds(25) };
        await using var h = await DemoHarness.StartAsync(backend);
        var job = await h.SubmitAsync(new { prompt = "progress", steps = 10, seed = 7 });
        var events = await h.ReadEventsAsync(Id(job));

        Assert.Equal("completed", Status(events[^1]));
        Assert.Equal(10, events[^1].GetProperty("step").GetInt32());
        Assert.Single(events[^1].GetProperty("results").EnumerateArray());
        var versions = events.Select(e => e.GetProperty("version").GetInt64()).ToList();
        Assert.Equal(versions.OrderBy(v => v).Distinct(), versions); // each event is news
        var running = events.Where(e => Status(e) == "running").ToList();
        var steps = running.Select(e => e.GetProperty("step").GetInt32()).ToList();
        Assert.Equal(steps.OrderBy(s => s), steps);
        Assert.True(steps.Distinct().Count() >= 5, $"expected most of the 10 steps as events, got {string.Join(",", steps)}");
        Assert.All(running, e => Assert.Equal(10, e.GetProperty("totalSteps").GetInt32()));
        Assert.All(running, e => Assert.Equal(0, e.GetProperty("position").GetInt32()));
    }

    [Fact]
    public async Task CancellingTheRunningJobStopsItSavesNothingAndFreesTheModel()
    {
        var backend = new PatternBackend { StepDelay = TimeSpan.FromMilliseconds(20) };
        await using var h = await DemoHarness.StartAsync(backend);
        var job = await h.SubmitAsync(new { prompt = "endless", steps = 1000 });
        await h.WaitForAsync(Id(job), j => Status(j) == "running" && j.GetProperty("step").GetInt32() >= 2, "running past step 2");

        var clock = Stopwatch.StartNew();
        using var cancel = await h.Http.DeleteAsync($"api/jobs/{Id(job)}");
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var cancelled = await h.WaitForStatusAsync(Id(job), "cancelled");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"cancel took {clock.Elapsed}");
        Assert.InRange(cancelled.GetProperty("step").GetInt32(), 2, 999);
        Assert.Empty(cancelled.GetProperty("results").EnumerateArray());
        Assert.Empty(Directory.GetFiles(h.OutputDirectory, "*.png"));

        var next = await h.SubmitAsync(new { prompt = "after the cancel", steps = 3 });
        await h.WaitForStatusAsync(Id(next), "completed");
        // Cancelling a finished job changes nothing.
        var again = await DemoHarness.JsonAsync(await h.Http.DeleteAsync($"api/jobs/{Id(next)}"));
        Assert.Equal("completed", Status(again));
    }

    [Fact]
    public async Task JobsWaitInOrderWithTheirPositionsAndAFullQueueIsRefused()
    {
        var backend = new PatternBackend { StepDelay = TimeSpan.FromMilliseconds(20) };
        await using var h = await DemoHarness.StartAsync(backend, new RequestLimits { MaxQueuedJobs = 2 });
        var a = await h.SubmitAsync(new { prompt = "first, long", steps = 1000 });
        await h.WaitForStatusAsync(Id(a), "running");
        var b = await h.SubmitAsync(new { prompt = "second", steps = 3 });
        var c = await h.SubmitAsync(new { prompt = "third", steps = 3 });
        Assert.Equal(("queued", 1), (Status(b), b.GetProperty("position").GetInt32()));
        Assert.Equal(("queued", 2), (Status(c), c.GetProperty("position").GetInt32()));
        var listening = new TaskCompletionSource();
        var movedUp = new TaskCompletionSource();
        // Follows the third job through the whole story. The stream sends the job's latest state, so a state that lasts
        // shorter than the reader's turn can be skipped: the test waits for the stream itself to show position 1.
        var cEvents = h.ReadEventsAsync(Id(c), e =>
        {
            listening.TrySetResult();
            if (Status(e) == "queued" && e.GetProperty("position").GetInt32() == 1) movedUp.TrySetResult();
        });
        await listening.Task.WaitAsync(DemoHarness.Patience);

        string full = await DemoHarness.ErrorAsync(await h.PostJobAsync(new { prompt = "fourth" }), HttpStatusCode.ServiceUnavailable);
        Assert.Contains("queue is full", full);
        var queue = await DemoHarness.JsonAsync(await h.Http.GetAsync("api/queue"));
        Assert.Equal((true, 2), (queue.GetProperty("running").GetBoolean(), queue.GetProperty("waiting").GetInt32()));

        // Cancelling a waiting job removes it at once; the one behind moves up.
        var bCancelled = await DemoHarness.JsonAsync(await h.Http.DeleteAsync($"api/jobs/{Id(b)}"));
        Assert.Equal("cancelled", Status(bCancelled));
        Assert.Equal(JsonValueKind.Null, bCancelled.GetProperty("position").ValueKind);
        await h.WaitForAsync(Id(c), j => j.GetProperty("position").GetInt32() == 1, "position 1");
        await movedUp.Task.WaitAsync(DemoHarness.Patience);

        await h.Http.DeleteAsync($"api/jobs/{Id(a)}");
        await h.WaitForStatusAsync(Id(a), "cancelled");
        await h.WaitForStatusAsync(Id(c), "completed");

        var seen = await cEvents;
        var positions = seen.Where(e => Status(e) == "queued").Select(e => e.GetProperty("position").GetInt32()).ToList();
        Assert.Equal(new[] { 2, 1 }, positions);
        Assert.Equal(new[] { "queued", "running", "completed" }, seen.Select(Status).Distinct());
        Assert.Equal(new[] { "first, long", "third" }, backend.Requests.Select(r => r.Prompt)); // b never reached the model
        Assert.Equal(1, backend.MaxConcurrentCalls);
    }

    [Fact]
    public async Task TwoConcurrentRequestsRunOneAfterTheOther()
    {
        var backend = new PatternBackend { StepDelay = TimeSpan.FromMilliseconds(10) };
        await using var h = await DemoHarness.StartAsync(backend);
        var submitted = await Task.WhenAll(
            h.SubmitAsync(new { prompt = "one", steps = 15 }),
            h.SubmitAsync(new { prompt = "two", steps = 15 }));
        Assert.Equal(new[] { 0, 1 }, submitted.Select(j => j.GetProperty("position").GetInt32()).OrderBy(p => p));
        var done = await Task.WhenAll(submitted.Select(j => h.WaitForStatusAsync(Id(j), "completed")));
        Assert.All(done, j => Assert.Single(j.GetProperty("results").EnumerateArray()));
        Assert.Equal(1, backend.MaxConcurrentCalls);
        // FIFO: the job that was ahead ran first.
        var first = submitted.OrderBy(j => j.GetProperty("position").GetInt32()).First();
        Assert.Equal(first.GetProperty("request").GetProperty("prompt").GetString(), backend.Requests.First().Prompt);
    }

    [Fact]
    public async Task ABackendFailureFailsThatJobWithItsMessageAndTheNextJobRuns()
    {
        var backend = new PatternBackend { FailOnPrompt = "boom" };
        await using var h = await DemoHarness.StartAsync(backend);
        var bad = await h.SubmitAsync(new { prompt = "boom", steps = 4 });
        var failed = await h.WaitForStatusAsync(Id(bad), "failed");
        Assert.Equal("generation failed: test failure requested by prompt 'boom'", failed.GetProperty("error").GetString());
        Assert.Contains(h.Logs.Entries, e => e.Level == LogLevel.Error && e.Exception is InvalidDataException);

        var good = await h.SubmitAsync(new { prompt = "fine", steps = 4 });
        await h.WaitForStatusAsync(Id(good), "completed");
    }

    [Fact]
    public async Task StoppingTheServerEndsTheRunningJobAndItsEventStream()
    {
        var backend = new PatternBackend { StepDelay = TimeSpan.FromMilliseconds(20) };
        var h = await DemoHarness.StartAsync(backend);
        var job = await h.SubmitAsync(new { prompt = "interrupted", steps = 1000 });
        await h.WaitForStatusAsync(Id(job), "running");
        var stream = h.ReadEventsAsync(Id(job));
        await Task.Delay(100);

        var clock = Stopwatch.StartNew();
        await h.Server.StopAsync();
        var events = await stream.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"stopping took {clock.Elapsed}");
        Assert.Equal("cancelled", Status(events[^1]));
        Assert.Empty(Directory.GetFiles(h.OutputDirectory, "*.png"));
        await h.DisposeAsync();
    }
}
