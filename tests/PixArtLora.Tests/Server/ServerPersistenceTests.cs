using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using PixArtLora.Server;

namespace PixArtLora.Tests.Server;

/// <summary>The gallery is rebuilt from the output folder, so results outlive the server process.</summary>
public class ServerPersistenceTests
{
    [Fact]
    public async Task ResultsSurviveARestartAndDamagedSidecarsAreSkipped()
    {
        string folder = TestPaths.NewTempDir("serve");
        var before = new List<(string Id, byte[] Png, JsonElement Result)>();
        await using (var first = await DemoHarness.StartAsync(new PatternBackend(null, new LoraInfo("style")), outputDirectory: folder))
        {
            foreach (var body in new object[]
                     {
                         new { prompt = "older job", steps = 2, seed = 10 },
                         new { prompt = "newer job", steps = 2, seed = 20, imageCount = 2, loras = new[] { new { name = "style", scale = 0.75 } } },
                     })
            {
                var job = await first.SubmitAsync(body);
                await first.WaitForStatusAsync(job.GetProperty("id").GetString()!, "completed");
                await Task.Delay(5); // distinct millisecond stamps keep the order unambiguous
            }
            var listed = await DemoHarness.JsonAsync(await first.Http.GetAsync("api/results"));
            foreach (var r in listed.GetProperty("results").EnumerateArray())
            {
                string id = r.GetProperty("id").GetString()!;
                before.Add((id, await first.Http.GetByteArrayAsync($"api/results/{id}.png"), r));
            }
        }
        Assert.Equal(new[] { "newer job", "newer job", "older job" }, before.Select(b => b.Result.GetProperty("prompt").GetString()));

        // Things a real folder accumulates: a damaged sidecar, a sidecar without its PNG, unrelated files.
        File.WriteAllText(Path.Combine(folder, "20990101-000000-000-0123456789ab-0.json"), "{ not json");
        File.WriteAllBytes(Path.Combine(folder, "20990101-000000-000-0123456789ab-0.png"), new byte[] { 1, 2, 3 });
        File.Copy(Path.Combine(folder, before[2].Id + ".json"), Path.Combine(folder, "20980101-000000-000-0123456789ab-0.json"));
        File.WriteAllText(Path.Combine(folder, "notes.json"), "{}");

        await using var second = await DemoHarness.StartAsync(new PatternBackend(null, new LoraInfo("style")), outputDirectory: folder);
        var after = (await DemoHarness.JsonAsync(await second.Http.GetAsync("api/results"))).GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(before.Select(b => b.Id), after.Select(r => r.GetProperty("id").GetString()));
        for (int i = 0; i < before.Count; i++)
        {
            Assert.Equal(before[i].Result.ToString(), after[i].ToString());
            Assert.Equal(before[i].Png, await second.Http.GetByteArrayAsync($"api/results/{before[i].Id}.png"));
        }
        Assert.Equal(0.75, after[0].GetProperty("loras")[0].GetProperty("scale").GetDouble());
        Assert.Equal(new long[] { 20, 21, 10 }, after.Select(r => r.GetProperty("seed").GetInt64()));
        Assert.Contains(second.Logs.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("unreadable result sidecar"));

        var newest = (await DemoHarness.JsonAsync(await second.Http.GetAsync("api/results?limit=1"))).GetProperty("results");
        Assert.Equal(before[0].Id, Assert.Single(newest.EnumerateArray()).GetProperty("id").GetString());
        // Jobs themselves live in memory only; their images are what persists.
        Assert.Equal(HttpStatusCode.NotFound, (await second.Http.GetAsync($"api/jobs/{before[0].Result.GetProperty("jobId").GetString()}")).StatusCode);
    }
}
