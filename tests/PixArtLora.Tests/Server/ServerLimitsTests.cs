using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PixArtLora.Server;

namespace PixArtLora.Tests.Server;

/// <summary>Everything a client can get wrong comes back as a 4xx with a message naming the field; nothing reaches the model.</summary>
public class ServerLimitsTests
{
    static readonly string LongText = new('a', 2001);

    public static TheoryData<string, string> OutOfLimits => new()
    {
        { """{"prompt": ""}""", "prompt: required (a non-empty string)" },
        { """{"negativePrompt": "only this"}""", "prompt: required (a non-empty string)" },
        { $$"""{"prompt": "{{LongText}}"}""", "prompt: 2001 characters, at most 2000 allowed" },
        { $$"""{"prompt": "ok", "negativePrompt": "{{LongText}}"}""", "negativePrompt: 2001 characters, at most 2000 allowed" },
        { """{"prompt": "ok", "steps": 0}""", "steps: 0 is out of range 1..1000" },
        { """{"prompt": "ok", "steps": 1001}""", "steps: 1001 is out of range 1..1000" },
        { """{"prompt": "ok", "guidanceScale": 31.5}""", "guidanceScale: 31.5 is out of range 0..30" },
        { """{"prompt": "ok", "seed": -1}""", "seed: -1 is out of range 0..9007199254740991" },
        { """{"prompt": "ok", "imageCount": 0}""", "imageCount: 0 is out of range 1..4" },
        { """{"prompt": "ok", "imageCount": 5}""", "imageCount: 5 is out of range 1..4" },
        { """{"prompt": "ok", "sampler": "plms"}""", "sampler: 'plms' is not one of dpm, ddim, euler" },
        { """{"prompt": "ok", "width": 256}""", "width, height: give both or neither" },
        { """{"prompt": "ok", "width": 250, "height": 256}""",
            "width, height: 250x256 is not one of the 33 sizes of test-pattern's aspect-ratio table ASPECT_RATIO_256_BIN (nearest in aspect ratio: 256x256)" },
        { """{"prompt": "ok", "width": 1024, "height": 1024}""", "width, height: 1024x1024 is not one of the 33 sizes" },
        { """{"prompt": "ok", "loras": [{"name": "nope", "scale": 1}]}""", "loras[0].name: 'nope' is not a LoRA of this server (available: style)" },
        { """{"prompt": "ok", "loras": [{"name": "style", "scale": 2.5}]}""", "loras[0].scale: 2.5 is out of range -2..2" },
        { """{"prompt": "ok", "loras": [{"name": "style", "scale": 1}, {"name": "style", "scale": 0}]}""", "loras[1].name: 'style' is given twice" },
        { """{"prompt": "ok", "loras": [{"name": "style"}]}""", "loras[0].scale: required (0 = off)" },
        { """{"prompt": "ok", "loras": [null]}""", "loras[0]: expected an object" },
    };

    public static TheoryData<string, string> Malformed => new()
    {
        { """{"prompt": "cut off",""", "request body: not valid JSON" },
        { "prompt=hello", "request body: not valid JSON" },
        { "", "request body: empty; expected a JSON object" },
        { "null", "request body: expected a JSON object, got null" },
        { "[1, 2]", "request body: must be a JSON object" },
        { """{"prompt": "ok", "steps": "ten"}""", "request body: steps must be an integer" },
        { """{"prompt": "ok", "steps": 2.5}""", "request body: steps must be an integer" },
        { """{"prompt": 42}""", "request body: prompt must be a string" },
        { """{"prompt": "ok", "loras": [{"name": "style", "scale": "high"}]}""", "request body: loras[0].scale must be a number" },
        { """{"prompt": "ok", "loras": {"style": 1}}""", "request body: loras must be an array" },
        { """{"prompt": "ok", "stepz": 10}""", "request body: unknown field at stepz" },
    };

    [Theory]
    [MemberData(nameof(OutOfLimits))]
    public async Task RequestsOutsideTheLimitsGet400NamingTheField(string body, string expected) =>
        await ExpectRefusal(body, HttpStatusCode.BadRequest, expected);

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task MalformedBodiesGet400SayingWhatIsWrong(string body, string expected) =>
        await ExpectRefusal(body, HttpStatusCode.BadRequest, expected);

    [Fact]
    public async Task ABodyThatIsNotJsonOrTooLargeIsRefusedWithJson()
    {
        await using var h = await DemoHarness.StartAsync();
        string wrongType = await DemoHarness.ErrorAsync(await h.PostRawAsync("""{"prompt": "ok"}""", "text/plain"), HttpStatusCode.UnsupportedMediaType);
        Assert.Contains("Content-Type must be application/json", wrongType);
        string huge = $$"""{"prompt": "{{new string('x', 100_000)}}"}""";
        Assert.Contains("bad request", await DemoHarness.ErrorAsync(await h.PostRawAsync(huge), HttpStatusCode.RequestEntityTooLarge));
        Assert.Empty(h.Backend.Requests);
    }

    static async Task ExpectRefusal(string body, HttpStatusCode status, string expected)
    {
        var backend = new PatternBackend(null, new LoraInfo("style"));
        await using var h = await DemoHarness.StartAsync(backend);
        using var response = await h.PostRawAsync(body);
        string error = await DemoHarness.ErrorAsync(response, status);
        Assert.StartsWith(expected, error);
        Assert.DoesNotContain("System.", error); // no .NET type names or stack frames
        Assert.Empty(backend.Requests);
    }

    [Fact]
    public async Task AnUnexpectedExceptionBecomesAGeneric500AndIsLoggedInFull()
    {
        var logs = new LogCollector();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders().AddProvider(logs);
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        await using var app = builder.Build();
        app.UseMiddleware<JsonErrorMiddleware>();
        app.MapGet("/boom", string () => throw new InvalidOperationException("secret internal detail"));
        await app.StartAsync();
        string url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        using var response = await http.GetAsync($"{url}/boom");
        string text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("internal server error; the details are in the server's log", JsonDocument.Parse(text).RootElement.GetProperty("error").GetString());
        Assert.DoesNotContain("secret", text);
        Assert.DoesNotContain(" at ", text);
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Error && e.Exception?.Message == "secret internal detail");
        await app.StopAsync();
    }
}
