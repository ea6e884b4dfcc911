using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace PixArtLora.Server;

/// <summary>
/// The JSON API behind the page:
/// <list type="table">
/// <item><term>GET /api/info</term><description>model, samplers with defaults, sizes, LoRAs, limits</description></item>
/// <item><term>GET /api/queue</term><description>whether a job runs and how many wait</description></item>
/// <item><term>POST /api/jobs</term><description>queue a <see cref="GenerationRequestBody"/>; 202 with the job</description></item>
/// <item><term>GET /api/jobs/{id}</term><description>the job now (<see cref="JobSnapshot"/>)</description></item>
/// <item><term>GET /api/jobs/{id}/events</term><description>server-sent events: one snapshot per change until it finishes</description></item>
/// <item><term>DELETE /api/jobs/{id}</term><description>cancel (waiting: removed; running: stopped at the next step)</description></item>
/// <item><term>GET /api/results?limit=N</term><description>recent images from the output folder, newest first</description></item>
/// <item><term>GET /api/results/{id}.png</term><description>the PNG with its parameters chunk (<c>?download=1</c>: as attachment)</description></item>
/// </list>
/// Errors are <c>{"error": "..."}</c>: 400 bad input, 404 unknown id, 415 not JSON, 503 queue full.
/// </summary>
internal static class ApiEndpoints
{
    static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(15);

    public static void Map(IEndpointRouteBuilder app, IGenerationBackend backend, GenerationQueue queue, ResultStore store,
        RequestLimits limits, int maxRecentResults, CancellationToken serverStopping)
    {
        app.MapGet("/api/info", (HttpContext c) => ServerJson.WriteAsync(c, 200, Describe(backend.Info, limits, maxRecentResults)));

        app.MapGet("/api/queue", (HttpContext c) =>
        {
            var (running, waiting) = queue.Status();
            return ServerJson.WriteAsync(c, 200, new { running, waiting });
        });

        app.MapPost("/api/jobs", async (HttpContext c) =>
        {
            var body = await ServerJson.ReadBodyAsync<GenerationRequestBody>(c.Request);
            var request = RequestValidator.Validate(body, backend.Info, limits, () => Random.Shared.NextInt64(0, 1L << 32));
            var job = queue.Enqueue(request);
            c.Response.Headers.Location = $"/api/jobs/{job.Id}";
            await ServerJson.WriteAsync(c, StatusCodes.Status202Accepted, job.Snapshot());
        });

        app.MapGet("/api/jobs/{id}", (HttpContext c, string id) =>
            queue.Find(id) is { } job ? ServerJson.WriteAsync(c, 200, job.Snapshot()) : NoJob(c, id));

        app.MapDelete("/api/jobs/{id}", (HttpContext c, string id) =>
            queue.Cancel(id) is { } job ? ServerJson.WriteAsync(c, 200, job.Snapshot()) : NoJob(c, id));

        app.MapGet("/api/jobs/{id}/events", (HttpContext c, string id) =>
            queue.Find(id) is { } job ? StreamEventsAsync(c, job, serverStopping) : NoJob(c, id));

        app.MapGet("/api/results", (HttpContext c) =>
        {
            int limit = maxRecentResults;
            if (c.Request.Query.TryGetValue("limit", out var raw))
            {
                if (!int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 1 || limit > maxRecentResults)
                    throw new RequestValidationException($"limit: '{raw}' is not an integer in 1..{maxRecentResults}");
            }
            return ServerJson.WriteAsync(c, 200, new { results = store.Recent(limit) });
        });

        app.MapGet("/api/results/{id}.png", async (HttpContext c, string id) =>
        {
            if (store.FindPng(id) is not { } path)
            {
                await ServerJson.WriteErrorAsync(c, StatusCodes.Status404NotFound, $"no result '{id}'");
                return;
            }
            bool download = c.Request.Query["download"] == "1";
            c.Response.ContentType = "image/png";
            c.Response.Headers.ContentDisposition = $"{(download ? "attachment" : "inline")}; filename=\"{id}.png\"";
            c.Response.Headers.CacheControl = "private, max-age=31536000, immutable"; // a result never changes
            await c.Response.SendFileAsync(path, c.RequestAborted);
        });

        app.Map("/api/{**rest}", (HttpContext c) =>
            ServerJson.WriteErrorAsync(c, StatusCodes.Status404NotFound, $"no API endpoint {c.Request.Method} {c.Request.Path}"));
    }

    static Task NoJob(HttpContext c, string id) =>
        ServerJson.WriteErrorAsync(c, StatusCodes.Status404NotFound, $"no job '{id}' (finished jobs are forgotten after a while; their images stay under /api/results)");

    /// <summary>Sends the job's snapshot now and after every change (coalescing bursts), until it finishes.</summary>
    static async Task StreamEventsAsync(HttpContext c, GenerationJob job, CancellationToken serverStopping)
    {
        using var both = CancellationTokenSource.CreateLinkedTokenSource(c.RequestAborted, serverStopping);
        var token = both.Token;
        c.Response.ContentType = "text/event-stream; charset=utf-8";
        c.Response.Headers.CacheControl = "no-cache";
        c.Response.Headers["X-Accel-Buffering"] = "no"; // reverse proxies must not hold events back
        long seen = -1;
        try
        {
            while (true)
            {
                var snapshot = job.Snapshot();
                if (snapshot.Version != seen)
                {
                    await WriteAsync(c, $"data: {JsonSerializer.Serialize(snapshot, ServerJson.Options)}\n\n", token);
                    // Only once written: a write cut short by the server stopping must be retried below.
                    seen = snapshot.Version;
                }
                if (snapshot.IsFinished) return;
                if (!await job.WaitForChangeAsync(seen, KeepAliveInterval, token))
                    await WriteAsync(c, ": keep-alive\n\n", token);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The page closed the stream (EventSource reconnects on its own if it wants more), or the server is
            // stopping: then the queue has already ended the job, and the page should learn how.
            if (c.RequestAborted.IsCancellationRequested) return;
            var last = job.Snapshot();
            if (last.Version == seen) return;
            try { await WriteAsync(c, $"data: {JsonSerializer.Serialize(last, ServerJson.Options)}\n\n", c.RequestAborted); }
            catch (Exception e) when (e is IOException or OperationCanceledException) { }
        }
    }

    static async Task WriteAsync(HttpContext c, string text, CancellationToken token)
    {
        await c.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(text), token);
        await c.Response.Body.FlushAsync(token);
    }

    static object Describe(ModelInfo model, RequestLimits limits, int maxRecentResults)
    {
        var square = model.Sizes.Nearest(1, 1);
        return new
        {
            model = model.Name,
            defaultSampler = model.DefaultSampler.Name,
            samplers = model.Samplers,
            sizeTable = model.Sizes.Name,
            sizes = model.Sizes.Bins.Select(b => new { width = b.Width, height = b.Height, ratio = b.Ratio }),
            defaultSize = new { width = square.Width, height = square.Height },
            loras = model.Loras,
            limits,
            maxRecentResults,
        };
    }
}
