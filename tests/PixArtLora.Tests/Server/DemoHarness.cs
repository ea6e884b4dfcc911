using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using PixArtLora.Server;

namespace PixArtLora.Tests.Server;

/// <summary>
/// A real <see cref="WebDemoServer"/> (Kestrel on 127.0.0.1, a free port) around a <see cref="PatternBackend"/>, with an
/// HttpClient and helpers that wait for job states. Every wait is bounded so a hung server fails the test instead of
/// stalling the suite.
/// </summary>
internal sealed class DemoHarness : IAsyncDisposable
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public WebDemoServer Server { get; }
    public PatternBackend Backend { get; }
    public HttpClient Http { get; }
    public string OutputDirectory { get; }
    public LogCollector Logs { get; }

    DemoHarness(WebDemoServer server, PatternBackend backend, string outputDirectory, LogCollector logs)
    {
        Server = server;
        Backend = backend;
        OutputDirectory = outputDirectory;
        Logs = logs;
        Http = new HttpClient { BaseAddress = server.Url, Timeout = Patience };
    }

    public static async Task<DemoHarness> StartAsync(PatternBackend? backend = null, RequestLimits? limits = null, string? outputDirectory = null)
    {
        backend ??= new PatternBackend();
        outputDirectory ??= TestPaths.NewTempDir("serve");
        var logs = new LogCollector();
        var server = await WebDemoServer.StartAsync(backend, new WebDemoOptions
        {
            Host = "127.0.0.1",
            Port = 0,
            OutputDirectory = outputDirectory,
            Limits = limits ?? new RequestLimits(),
            ConfigureLogging = l => l.AddProvider(logs),
        });
        return new DemoHarness(server, backend, outputDirectory, logs);
    }

    public Task<HttpResponseMessage> PostJobAsync(object body) => Http.PostAsJsonAsync("api/jobs", body);

    public Task<HttpResponseMessage> PostRawAsync(string body, string contentType = "application/json") =>
        Http.PostAsync("api/jobs", new StringContent(body, Encoding.UTF8, contentType));

    /// <summary>Queues a job and returns its first snapshot (asserting 202).</summary>
    public async Task<JsonElement> SubmitAsync(object body)
    {
        using var response = await PostJobAsync(body);
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"POST /api/jobs: {(int)response.StatusCode} {json}");
        return json;
    }

    public async Task<JsonElement> GetJobAsync(string id) => await JsonAsync(await Http.GetAsync($"api/jobs/{id}"));

    /// <summary>Polls the job until <paramref name="condition"/> holds.</summary>
    public async Task<JsonElement> WaitForAsync(string id, Func<JsonElement, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var job = await GetJobAsync(id);
            if (condition(job)) return job;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"job {id} never became {what}; last state {job}");
            await Task.Delay(10);
        }
    }

    public Task<JsonElement> WaitForStatusAsync(string id, string status) =>
        WaitForAsync(id, j => j.GetProperty("status").GetString() == status, status);

    /// <summary>Reads the job's server-sent events until the stream ends (the job finished), telling <paramref name="onEvent"/> of each.</summary>
    public async Task<List<JsonElement>> ReadEventsAsync(string id, Action<JsonElement>? onEvent = null)
    {
        using var timeout = new CancellationTokenSource(Patience);
        using var response = await Http.GetAsync($"api/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        var events = new List<JsonElement>();
        while (await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            events.Add(JsonDocument.Parse(line[6..]).RootElement.Clone());
            onEvent?.Invoke(events[^1]);
        }
        return events;
    }

    public static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.Content.Headers.ContentType?.MediaType == "application/json",
            $"{(int)response.StatusCode}: expected JSON, got {response.Content.Headers.ContentType}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>Asserts a 4xx/5xx JSON error and returns its message.</summary>
    public static async Task<string> ErrorAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == expected, $"expected {(int)expected}, got {(int)response.StatusCode}: {json}");
        return json.GetProperty("error").GetString()!;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>Keeps what the server logs, so tests can check that failures are logged in full.</summary>
internal sealed class LogCollector : ILoggerProvider
{
    public ConcurrentQueue<(LogLevel Level, string Category, string Message, Exception? Exception)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
    public void Dispose() { }

    sealed class Logger(LogCollector owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) owner.Entries.Enqueue((logLevel, category, formatter(state, exception), exception));
        }
    }
}
