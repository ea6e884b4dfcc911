using System.Text.Json;
using PixArtLora.Diffusion;

namespace PixArtLora.Tests.Diffusion;

public class TimestepGridTests
{
    [Fact]
    public void SingleStepSpacingsMatchHandComputedGrids()
    {
        // linspace(0, 999, 8) = k · 142.714..., rounded half to even.
        Assert.Equal(new long[] { 999, 856, 714, 571, 428, 285, 143, 0 }, TimestepGrid.SingleStep("linspace", 1000, 8, 0));
        // leading: k · (1000 // 8) + offset.
        Assert.Equal(new long[] { 876, 751, 626, 501, 376, 251, 126, 1 }, TimestepGrid.SingleStep("leading", 1000, 8, 1));
        // trailing: round(1000 - k · 125) - 1.
        Assert.Equal(new long[] { 999, 874, 749, 624, 499, 374, 249, 124 }, TimestepGrid.SingleStep("trailing", 1000, 8, 0));
        // 1000 / 7 is not exact: the grid must still have 7 points.
        Assert.Equal(7, TimestepGrid.SingleStep("trailing", 1000, 7, 0).Length);
    }

    [Fact]
    public void MultistepGridDropsTheFinalPointAndRoundsTiesToEven()
    {
        // linspace(0, 999, 9) = k · 124.875: 499.5 rounds to 500 (even), 624.375 to 624.
        Assert.Equal(new long[] { 999, 874, 749, 624, 500, 375, 250, 125 }, TimestepGrid.Multistep("linspace", 1000, 1000, 8, 0));
        // 20 steps: k · 49.95, and 10 · 49.95 = 499.5 → 500.
        Assert.Contains(500L, TimestepGrid.Multistep("linspace", 1000, 1000, 20, 0));
        Assert.Equal(new long[] { 888, 777, 666, 555, 444, 333, 222, 111 }, TimestepGrid.Multistep("leading", 1000, 1000, 8, 0));
    }

    [Fact]
    public void EulerTimestepsAreUnroundedFloat32()
    {
        var t = TimestepGrid.SingleStepFloat("linspace", 1000, 8, 0);
        Assert.Equal(856.285714, t[1], 4);
        Assert.Equal((double)(float)t[1], t[1]);
        Assert.Equal(0.0, t[^1]);
    }

    [Fact]
    public void IddpmRespacingMatchesTheReferenceExamples()
    {
        // space_timesteps outputs recorded from the official code in the iddpm-sample-20 case.
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("parity", "iddpm-sample-20", "case.json")));
        var examples = doc.RootElement.GetProperty("respacing_examples");
        int checkedCount = 0;
        foreach (var example in examples.EnumerateObject())
        {
            var actual = TimestepGrid.IddpmRespacing(1000, example.Name);
            if (example.Value.ValueKind == JsonValueKind.Array)
                Assert.Equal(example.Value.EnumerateArray().Select(e => e.GetInt32()), actual);
            else
            {
                Assert.Equal(example.Value.GetProperty("count").GetInt32(), actual.Length);
                Assert.Equal(example.Value.GetProperty("first").EnumerateArray().Select(e => e.GetInt32()), actual.Take(10));
                Assert.Equal(example.Value.GetProperty("last").EnumerateArray().Select(e => e.GetInt32()), actual.TakeLast(10));
            }
            checkedCount++;
        }
        Assert.True(checkedCount >= 5);
    }

    [Fact]
    public void IddpmRespacingRejectsImpossibleRequests()
    {
        Assert.Contains("cannot take 1001 steps", Assert.Throws<ArgumentException>(() => TimestepGrid.IddpmRespacing(1000, "1001")).Message);
        Assert.Contains("ddimN", Assert.Throws<ArgumentException>(() => TimestepGrid.IddpmRespacing(1000, "ten")).Message);
        Assert.Throws<ArgumentException>(() => TimestepGrid.IddpmRespacing(1000, "ddim999"));
    }
}
