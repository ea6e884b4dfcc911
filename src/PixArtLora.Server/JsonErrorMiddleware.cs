using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace PixArtLora.Server;

/// <summary>
/// The outermost layer: whatever goes wrong inside, the client gets <c>{"error": "..."}</c> with a fitting status and
/// never a stack trace. Refusals the code raises on purpose (bad request, wrong content type, full queue, Kestrel's own
/// limits) keep their message; anything unexpected is logged in full and answered with a generic 500.
/// </summary>
public sealed class JsonErrorMiddleware(RequestDelegate next, ILogger<JsonErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer.
        }
        catch (Exception e)
        {
            var (status, message) = e switch
            {
                RequestValidationException => (StatusCodes.Status400BadRequest, e.Message),
                UnsupportedContentTypeException => (StatusCodes.Status415UnsupportedMediaType, e.Message),
                QueueFullException => (StatusCodes.Status503ServiceUnavailable, e.Message),
                BadHttpRequestException bad => (bad.StatusCode, $"bad request: {bad.Message}"),
                _ => (StatusCodes.Status500InternalServerError, "internal server error; the details are in the server's log"),
            };
            if (status >= 500 && e is not QueueFullException)
                logger.LogError(e, "{Method} {Path} failed", context.Request.Method, context.Request.Path);
            if (context.Response.HasStarted)
            {
                // Headers are gone (e.g. mid event stream): all that is left is to end the response.
                context.Abort();
                return;
            }
            context.Response.Clear();
            await ServerJson.WriteErrorAsync(context, status, message);
        }
    }
}
