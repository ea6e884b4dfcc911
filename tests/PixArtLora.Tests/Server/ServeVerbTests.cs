using System.CommandLine;
using System.Text.RegularExpressions;
using PixArtLora.Cli.Verbs;
using PixArtLora.Server;

namespace PixArtLora.Tests.Server;

/// <summary><c>lora serve</c>: the real executable without a pipeline, and the verb around a test backend.</summary>
public class ServeVerbTests
{
    [Fact]
    public void WithoutTheInferencePipelineTheVerbSaysSoAndFails()
    {
        var result = LoraProcess.Run(TimeSpan.FromSeconds(60),
            new[] { "serve", "--model_id", "sigma-512-ms", "--port", "0", "--output_dir", TestPaths.NewTempDir("serve") });
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("error:", result.Stderr);
        Assert.DoesNotContain("serving", result.Stdout);
    }

    [Fact]
    public async Task TheVerbServesTheBackendItsFactoryLoadsAndStopsOnCancel()
    {
        ServeBackendSettings? given = null;
        var command = ServeVerb.Create((settings, _) =>
        {
            given = settings;
            return Task.FromResult<IGenerationBackend>(new PatternBackend());
        });
        var root = new RootCommand { command };
        string folder = TestPaths.NewTempDir("serve");
        var parse = root.Parse(new[] { "serve", "--model-id", "pattern", "--lora_path", "a.safetensors:0.7", "b.safetensors",
            "--port", "0", "--output_dir", folder, "--device", "cuda:1", "--dtype", "bf16" });
        Assert.Empty(parse.Errors);

        var output = new StringWriter();
        var error = new StringWriter();
        var config = new InvocationConfiguration { Output = TextWriter.Synchronized(output), Error = TextWriter.Synchronized(error), EnableDefaultExceptionHandler = false };
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var run = parse.InvokeAsync(config, stop.Token);

        Uri? url = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(20); url == null && DateTime.UtcNow < deadline && !run.IsCompleted; await Task.Delay(20))
            if (Regex.Match(output.ToString(), @"serving test-pattern on (http://127\.0\.0\.1:\d+/)") is { Success: true } m) url = new Uri(m.Groups[1].Value);
        Assert.True(url != null, $"no address printed; output: {output}; error: {error}; {(run.IsFaulted ? run.Exception : null)}");
        Assert.NotNull(given);
        Assert.Equal(("pattern", "cuda:1", "bf16"), (given.ModelId, given.Device, given.Dtype));
        Assert.Equal(new[] { "a.safetensors:0.7", "b.safetensors" }, given.LoraPaths);
        Assert.Contains(Path.GetFullPath(folder), output.ToString());
        Assert.Equal("", error.ToString()); // loopback: no exposure warning

        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(20) };
        var info = await DemoHarness.JsonAsync(await http.GetAsync("api/info"));
        Assert.Equal("test-pattern", info.GetProperty("model").GetString());

        stop.Cancel();
        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(15)));
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync("api/info"));
    }

    [Fact]
    public void ModelIdIsRequired()
    {
        var root = new RootCommand { ServeVerb.Create() };
        var parse = root.Parse(new[] { "serve" });
        Assert.Contains(parse.Errors, e => e.Message.Contains("--model_id"));
    }
}
