using System.Diagnostics;
using PixArtLora.Training;

namespace PixArtLora.Tests.Training;

public class StopRequestTests
{
    [Fact]
    public void ManualRequestSetsTheFlagAndKeepsTheFirstReason()
    {
        using var stop = StopRequest.Manual();
        Assert.False(stop.IsRequested);
        stop.Request("validation failed");
        stop.Request("second");
        Assert.True(stop.IsRequested);
        Assert.True(stop.Token.IsCancellationRequested);
        Assert.Equal("validation failed", stop.Reason);
    }

    [Fact]
    public void SigtermBecomesAStopRequestInsteadOfEndingTheProcess()
    {
        using var stop = StopRequest.Install();
        // Signal this very test process: with the handler installed it must survive and raise the flag.
        using (var kill = Process.Start(new ProcessStartInfo("kill", $"-TERM {Environment.ProcessId}") { UseShellExecute = false })!)
            kill.WaitForExit();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!stop.IsRequested && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Assert.True(stop.IsRequested, "SIGTERM did not reach the handler within 10 s");
        Assert.Equal("SIGTERM", stop.Reason);
    }
}
