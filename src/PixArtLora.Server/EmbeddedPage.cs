using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace PixArtLora.Server;

/// <summary>
/// Serves the page (wwwroot/, compiled into this assembly): no files to deploy beside the executable, no CDN, no
/// build step. The page is small, so each file is read once and kept.
/// </summary>
internal static class EmbeddedPage
{
    static readonly Assembly Assembly = typeof(EmbeddedPage).Assembly;
    static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".svg"] = "image/svg+xml",
    };

    // Only same-origin scripts and styles, no framing: the page holds no secrets, but it can start work on this machine.
    const string ContentSecurityPolicy =
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

    public static void Map(IEndpointRouteBuilder app)
    {
        var files = Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("wwwroot/", StringComparison.Ordinal))
            .ToDictionary(n => n["wwwroot/".Length..], Read, StringComparer.Ordinal);
        if (!files.ContainsKey("index.html")) throw new InvalidOperationException("wwwroot/index.html is missing from the PixArtLora.Server assembly");

        app.MapGet("/", (HttpContext c) => Send(c, "index.html", files["index.html"]));
        app.MapGet("/static/{name}", (HttpContext c, string name) =>
            files.TryGetValue(name, out var bytes) && name != "index.html"
                ? Send(c, name, bytes)
                : ServerJson.WriteErrorAsync(c, StatusCodes.Status404NotFound, $"no static file '{name}'"));
    }

    static Task Send(HttpContext context, string name, byte[] bytes)
    {
        var headers = context.Response.Headers;
        headers.ContentType = ContentTypes.GetValueOrDefault(Path.GetExtension(name), "application/octet-stream");
        headers.CacheControl = "no-cache";
        headers.XContentTypeOptions = "nosniff";
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers["Referrer-Policy"] = "no-referrer";
        return context.Response.Body.WriteAsync(bytes, context.RequestAborted).AsTask();
    }

    static byte[] Read(string resource)
    {
        using var stream = Assembly.GetManifestResourceStream(resource)!;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
