using System.Net;
using System.Text.Json;
using PixArtLora.Server;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Tests.Server;

/// <summary>The API against a real Kestrel host on a loopback port: a job from request to downloadable PNGs.</summary>
public class ServerApiTests
{
    [Fact]
    public async Task JobRoundTripGivesPngsWithTheirParametersAndConsecutiveSeeds()
    {
        var backend = new PatternBackend(null, new LoraInfo("style", 0.8), new LoraInfo("detail"));
        await using var h = await DemoHarness.StartAsync(backend);
        var job = await h.SubmitAsync(new
        {
            prompt = "a red fox in fresh snow",
            negativePrompt = "blurry",
            sampler = "ddim",
            steps = 6,
            guidanceScale = 3.5,
            seed = 1234,
            width = 320,
            height = 192,
            imageCount = 2,
            loras = new object[] { new { name = "style", scale = 0.5 }, new { name = "detail", scale = 0 } },
        });
        string id = job.GetProperty("id").GetString()!;
        var done = await h.WaitForStatusAsync(id, "completed");

        // The backend got the request as sent, with the LoRA at 0 left out.
        var sent = Assert.Single(backend.Requests);
        Assert.Equal(("a red fox in fresh snow", "blurry", "ddim", 6, 3.5, 1234L, 320, 192, 2),
            (sent.Prompt, sent.NegativePrompt, sent.Sampler, sent.Steps, sent.GuidanceScale, sent.Seed, sent.Width, sent.Height, sent.ImageCount));
        Assert.Equal(new[] { new AppliedLora("style", 0.5) }, sent.Loras);

        var results = done.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(new long[] { 1234, 1235 }, results.Select(r => r.GetProperty("seed").GetInt64()));
        var pixels = new List<byte[]>();
        foreach (var result in results)
        {
            string rid = result.GetProperty("id").GetString()!;
            using var response = await h.Http.GetAsync($"api/results/{rid}.png");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
            byte[] png = await response.Content.ReadAsByteArrayAsync();
            using var image = Image.Load<Rgb24>(png);
            Assert.Equal((320, 192), (image.Width, image.Height));
            var raw = new byte[320 * 192 * 3];
            image.CopyPixelDataTo(raw);
            pixels.Add(raw);

            string? parameters = PngTextChunk.Read(png, "parameters");
            Assert.NotNull(parameters);
            Assert.Equal(result.GetProperty("parameters").GetString(), parameters);
            Assert.StartsWith("a red fox in fresh snow\nNegative prompt: blurry\n", parameters);
            Assert.Contains($"Seed: {result.GetProperty("seed").GetInt64()}, Size: 320x192", parameters);
            Assert.True(File.Exists(Path.Combine(h.OutputDirectory, rid + ".png")));
            Assert.True(File.Exists(Path.Combine(h.OutputDirectory, rid + ".json")));
        }
        Assert.NotEqual(pixels[0], pixels[1]); // different seeds, different images

        using var download = await h.Http.GetAsync($"api/results/{results[0].GetProperty("id").GetString()}.png?download=1");
        Assert.Equal("attachment", download.Content.Headers.ContentDisposition?.DispositionType);

        var listed = await DemoHarness.JsonAsync(await h.Http.GetAsync("api/results"));
        Assert.Equal(results.Select(r => r.GetProperty("id").GetString()),
            listed.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()));
    }

    [Fact]
    public async Task InfoDescribesTheModelSizesLorasAndLimits()
    {
        await using var h = await DemoHarness.StartAsync(new PatternBackend(null, new LoraInfo("style", 0.8)),
            new RequestLimits { MaxImages = 3 });
        var info = await DemoHarness.JsonAsync(await h.Http.GetAsync("api/info"));
        Assert.Equal("test-pattern", info.GetProperty("model").GetString());
        Assert.Equal("dpm", info.GetProperty("defaultSampler").GetString());
        Assert.Equal(new[] { "dpm:12:4.5", "ddim:20:4.5", "euler:16:3" }, info.GetProperty("samplers").EnumerateArray()
            .Select(s => $"{s.GetProperty("name")}:{s.GetProperty("defaultSteps")}:{s.GetProperty("defaultGuidanceScale")}"));
        var sizes = info.GetProperty("sizes").EnumerateArray().Select(s => (s.GetProperty("width").GetInt32(), s.GetProperty("height").GetInt32())).ToList();
        Assert.Equal(33, sizes.Count); // diffusers' 256 binning table
        Assert.Contains((320, 192), sizes);
        Assert.Equal(256, info.GetProperty("defaultSize").GetProperty("width").GetInt32());
        Assert.Equal("style", info.GetProperty("loras")[0].GetProperty("name").GetString());
        Assert.Equal(0.8, info.GetProperty("loras")[0].GetProperty("defaultScale").GetDouble());
        Assert.Equal(3, info.GetProperty("limits").GetProperty("maxImages").GetInt32());
        Assert.Equal(1000, info.GetProperty("limits").GetProperty("maxSteps").GetInt32());
    }

    [Fact]
    public async Task DefaultsFillAnOmittedSamplerStepsSizeAndSeed()
    {
        await using var h = await DemoHarness.StartAsync();
        var job = await h.SubmitAsync(new { prompt = "defaults" });
        var request = job.GetProperty("request");
        Assert.Equal(("dpm", 12, 4.5, 256, 256, 1), (request.GetProperty("sampler").GetString(), request.GetProperty("steps").GetInt32(),
            request.GetProperty("guidanceScale").GetDouble(), request.GetProperty("width").GetInt32(), request.GetProperty("height").GetInt32(),
            request.GetProperty("imageCount").GetInt32()));
        long seed = request.GetProperty("seed").GetInt64();
        var done = await h.WaitForStatusAsync(job.GetProperty("id").GetString()!, "completed");
        Assert.Equal(seed, done.GetProperty("results")[0].GetProperty("seed").GetInt64()); // the random seed is reported and used
    }

    [Fact]
    public async Task PageAndItsAssetsAreServedWithoutAnythingExternal()
    {
        await using var h = await DemoHarness.StartAsync();
        using var page = await h.Http.GetAsync("");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("default-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single());
        string html = await page.Content.ReadAsStringAsync();
        foreach (var asset in new[] { "/static/app.js", "/static/app.css", "/static/favicon.svg" })
        {
            Assert.Contains(asset, html);
            using var response = await h.Http.GetAsync(asset.TrimStart('/'));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            string text = await response.Content.ReadAsStringAsync();
            Assert.DoesNotContain("https://", text.Replace("http://www.w3.org/2000/svg", "")); // no CDN
        }
        Assert.Equal(HttpStatusCode.NotFound, (await h.Http.GetAsync("static/nope.js")).StatusCode);
    }

    [Fact]
    public async Task UnknownJobsResultsAndEndpointsAre404JsonAndIdsCannotEscapeTheFolder()
    {
        string root = TestPaths.NewTempDir("serve");
        File.WriteAllText(Path.Combine(root, "secret.png"), "not for you");
        await using var h = await DemoHarness.StartAsync(outputDirectory: Path.Combine(root, "results"));
        Assert.Contains("no job 'nope'", await DemoHarness.ErrorAsync(await h.Http.GetAsync("api/jobs/nope"), HttpStatusCode.NotFound));
        await DemoHarness.ErrorAsync(await h.Http.DeleteAsync("api/jobs/nope"), HttpStatusCode.NotFound);
        await DemoHarness.ErrorAsync(await h.Http.GetAsync("api/jobs/nope/events"), HttpStatusCode.NotFound);
        await DemoHarness.ErrorAsync(await h.Http.GetAsync("api/results/20250101-120000-000-0123456789ab-0.png"), HttpStatusCode.NotFound);
        await DemoHarness.ErrorAsync(await h.Http.GetAsync("api/results/..%2Fsecret.png"), HttpStatusCode.NotFound);
        await DemoHarness.ErrorAsync(await h.Http.GetAsync("api/nothing/here"), HttpStatusCode.NotFound);
        Assert.Contains("limit", await DemoHarness.ErrorAsync(await h.Http.GetAsync("api/results?limit=-3"), HttpStatusCode.BadRequest));
    }

    [Fact]
    public async Task RequestsUnderAForeignHostNameAreRefused()
    {
        await using var h = await DemoHarness.StartAsync();
        using var rebinding = new HttpRequestMessage(HttpMethod.Get, "api/info");
        rebinding.Headers.Host = $"attacker.example:{h.Server.Url.Port}";
        Assert.Equal(HttpStatusCode.BadRequest, (await h.Http.SendAsync(rebinding)).StatusCode);
        using var local = new HttpRequestMessage(HttpMethod.Get, "api/info");
        local.Headers.Host = $"localhost:{h.Server.Url.Port}";
        Assert.Equal(HttpStatusCode.OK, (await h.Http.SendAsync(local)).StatusCode);
    }

    [Fact]
    public void OnlyLoopbackAddressesCountAsPrivate()
    {
        Assert.True(WebDemoOptions.IsLoopback("127.0.0.1"));
        Assert.True(WebDemoOptions.IsLoopback("::1"));
        Assert.True(WebDemoOptions.IsLoopback("localhost"));
        Assert.False(WebDemoOptions.IsLoopback("0.0.0.0"));
        Assert.False(WebDemoOptions.IsLoopback("::"));
        Assert.False(WebDemoOptions.IsLoopback("192.168.1.10"));
        Assert.Null(PixArtLora.Cli.Verbs.ServeVerb.ExposureWarning("127.0.0.1"));
        Assert.Contains("no login", PixArtLora.Cli.Verbs.ServeVerb.ExposureWarning("0.0.0.0"));
    }
}
