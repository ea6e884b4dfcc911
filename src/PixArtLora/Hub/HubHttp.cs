using System.Net;
using System.Net.Http.Headers;

namespace PixArtLora.Hub;

/// <summary>The network failed or the Hub answered 5xx/429: worth resuming, or falling back to the cache.</summary>
internal sealed class HubTransientException : HubException
{
    public HubTransientException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// HTTP with the Hub's conventions: redirects followed by hand (up to 10) so that the token is only ever sent
/// to the endpoint's own host, never to a CDN it redirects to; no compression (sizes must be the file's);
/// a timeout on headers; 401/403/404 turned into messages that say what to do.
/// </summary>
internal sealed class HubHttp : IDisposable
{
    const int MaxRedirects = 10;
    readonly HttpClient _client;
    readonly HubOptions _options;
    readonly Uri _endpoint;

    public HubHttp(HubOptions options, HttpMessageHandler? handler)
    {
        _options = options;
        _endpoint = new Uri(options.Endpoint.TrimEnd('/') + "/");
        handler ??= new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = options.RequestTimeout,
            UseCookies = false,
        };
        _client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _client.DefaultRequestHeaders.UserAgent.ParseAdd("pixartlora/0.1");
    }

    /// <summary>
    /// Sends a request, following redirects, and returns the final response (2xx, or 416 for a range past the end).
    /// <paramref name="onHop"/> sees every response on the way, redirects included (the Hub puts X-Linked-Etag on its 302).
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, HubRepo repo, string what, long? rangeStart,
        CancellationToken ct, Action<HttpResponseMessage>? onHop = null)
    {
        if (_options.Offline) throw new InvalidOperationException("offline mode: no request may be sent");
        Uri current = url;
        for (int hop = 0; hop <= MaxRedirects; hop++)
        {
            using var request = new HttpRequestMessage(method, current);
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (rangeStart is > 0) request.Headers.Range = new RangeHeaderValue(rangeStart, null);
            if (_options.Token != null && SameOrigin(current, _endpoint))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.Token);

            HttpResponseMessage response;
            using (var headersTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                headersTimeout.CancelAfter(_options.RequestTimeout);
                try
                {
                    response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, headersTimeout.Token);
                }
                catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
                {
                    throw new HubTransientException($"{what}: no answer from {current.GetLeftPart(UriPartial.Path)} within {_options.RequestTimeout.TotalSeconds:0} s", e);
                }
                catch (HttpRequestException e)
                {
                    throw new HubTransientException($"{what}: cannot reach {current.GetLeftPart(UriPartial.Authority)} ({e.Message})", e);
                }
            }

            onHop?.Invoke(response);
            int code = (int)response.StatusCode;
            if (code is 301 or 302 or 303 or 307 or 308 && response.Headers.Location is { } location)
            {
                current = location.IsAbsoluteUri ? location : new Uri(current, location);
                if (code == 303) method = HttpMethod.Get;
                response.Dispose();
                continue;
            }
            if (response.IsSuccessStatusCode || code == 416) return response;
            using (response) throw Failure(response, current, repo, what);
        }
        throw new HubException($"{what}: more than {MaxRedirects} redirects starting at {url}");
    }

    HubException Failure(HttpResponseMessage response, Uri url, HubRepo repo, string what)
    {
        int code = (int)response.StatusCode;
        string errorCode = Header(response, "X-Error-Code") ?? "";
        string serverMessage = Header(response, "X-Error-Message") is { } m ? $" ({m})" : "";
        string page = repo.PageUrl(_options.Endpoint);
        string shownUrl = url.GetLeftPart(UriPartial.Path);
        if (code is 401 or 403 || errorCode == "GatedRepo")
        {
            string tokenHint = _options.Token == null
                ? $"No token was sent: set HF_TOKEN or save a token to {_options.TokenPath} (huggingface-cli login)."
                : "A token was sent, and the Hub refused it for this repository.";
            return new HubAccessDeniedException(
                $"{what}: access denied (HTTP {code}) at {shownUrl}{serverMessage}. {repo} is gated or private: " +
                $"log in or accept the model's terms at {page}. {tokenHint}", page);
        }
        if (code == 404)
        {
            string thing = errorCode switch
            {
                "RevisionNotFound" => "revision not found",
                "EntryNotFound" => "file not found",
                _ => "repository, revision or file not found",
            };
            return new HubNotFoundException($"{what}: {thing} (HTTP 404{serverMessage}) at {shownUrl}; check the id at {page}");
        }
        if (code >= 500 || code == 429)
            return new HubTransientException($"{what}: the Hub answered HTTP {code} {response.ReasonPhrase}{serverMessage} at {shownUrl}");
        return new HubException($"{what}: HTTP {code} {response.ReasonPhrase}{serverMessage} at {shownUrl}");
    }

    public static string? Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault()
        : r.Content.Headers.TryGetValues(name, out var c) ? c.FirstOrDefault() : null;

    static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    public void Dispose() => _client.Dispose();
}
