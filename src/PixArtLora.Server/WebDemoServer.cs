using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace PixArtLora.Server;

/// <summary>How <c>lora serve</c> listens and where it keeps results.</summary>
public sealed record WebDemoOptions
{
    /// <summary>IP address to bind. 127.0.0.1 (default) keeps the demo on this machine; 0.0.0.0 or :: exposes it.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 picks a free one (see <see cref="WebDemoServer.Url"/>).</summary>
    public int Port { get; init; } = 7788;
    /// <summary>Folder for the generated PNGs and their JSON sidecars; the gallery is rebuilt from it after a restart.</summary>
    public string OutputDirectory { get; init; } = Path.Combine("output", "serve");
    public RequestLimits Limits { get; init; } = new();
    /// <summary>How many past results the gallery lists at most.</summary>
    public int MaxRecentResults { get; init; } = 60;
    /// <summary>Log providers (none by default: the CLI adds the console, tests add their own).</summary>
    public Action<ILoggingBuilder>? ConfigureLogging { get; init; }

    /// <summary>True when <paramref name="host"/> is only reachable from this machine (127.0.0.0/8, ::1, localhost).</summary>
    public static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));

    internal IPAddress BindAddress() =>
        Host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
        : IPAddress.TryParse(Host, out var ip) ? ip
        : throw new ArgumentException($"--host: '{Host}' is not an IP address (use 127.0.0.1 for this machine only, 0.0.0.0 or :: to expose the demo)");
}

/// <summary>
/// The web demo: Kestrel serving one page and a JSON API around an <see cref="IGenerationBackend"/>, with a FIFO
/// queue (one job at a time) and results kept on disk. The caller owns the backend and disposes it after the server.
/// </summary>
public sealed class WebDemoServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly GenerationQueue _queue;
    bool _stopped;

    /// <summary>The address the server answers on, e.g. http://127.0.0.1:7788/.</summary>
    public Uri Url { get; }

    /// <summary>The folder results are written to.</summary>
    public string OutputDirectory { get; }

    WebDemoServer(WebApplication app, GenerationQueue queue, Uri url, string outputDirectory)
    {
        _app = app;
        _queue = queue;
        Url = url;
        OutputDirectory = outputDirectory;
    }

    /// <summary>Binds, starts serving and returns once the port is open.</summary>
    public static async Task<WebDemoServer> StartAsync(IGenerationBackend backend, WebDemoOptions options, CancellationToken cancellationToken = default)
    {
        var address = options.BindAddress();
        if (options.Port is < 0 or > 65535) throw new ArgumentException($"--port: {options.Port} is not a TCP port (0..65535; 0 = any free port)");
        _ = backend.Info.DefaultSampler; // a model without samplers cannot serve a single request: fail now, not on the first one

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            // Nothing from the current folder or ASPNETCORE_* variables should change what this server does.
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = Environments.Production,
            Args = Array.Empty<string>(),
        });
        builder.Logging.ClearProviders();
        options.ConfigureLogging?.Invoke(builder.Logging);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.WebHost.UseKestrel(k =>
        {
            k.Listen(address, options.Port);
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = 64 * 1024; // a request is a few prompts and numbers
        });
        if (WebDemoOptions.IsLoopback(options.Host))
        {
            // Bound to this machine: also refuse requests that arrive under a foreign host name, which is how a web
            // page on another site would reach the demo through DNS rebinding.
            builder.Services.AddHostFiltering(h => h.AllowedHosts = new[] { "localhost", "127.0.0.1", "[::1]" });
        }

        var app = builder.Build();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("PixArtLora.Server");
        var store = new ResultStore(options.OutputDirectory, logger);
        var queue = new GenerationQueue(backend, store, options.Limits, logger);
        var stopping = app.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;

        app.UseMiddleware<JsonErrorMiddleware>();
        if (WebDemoOptions.IsLoopback(options.Host)) app.UseHostFiltering();
        EmbeddedPage.Map(app);
        ApiEndpoints.Map(app, backend, queue, store, options.Limits, options.MaxRecentResults, stopping);

        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            await queue.DisposeAsync();
            await app.DisposeAsync();
            throw;
        }
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
                    ?? throw new InvalidOperationException("Kestrel started without reporting its address");
        return new WebDemoServer(app, queue, new Uri(bound.EndsWith('/') ? bound : bound + "/"), store.Directory);
    }

    /// <summary>Completes when the server stops (Ctrl+C through the host, or <see cref="StopAsync"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Cancels the running and waiting jobs, closes open event streams and stops listening.</summary>
    public async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        await _queue.DisposeAsync();
        await _app.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
    }
}
