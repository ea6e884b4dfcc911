using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace PixArtLora.Tests.Server;

/// <summary>
/// Drives the system's headless Chromium over the DevTools protocol (a WebSocket on 127.0.0.1; no package, no browser
/// download): navigate, run JavaScript, type, click with real mouse events, take screenshots. Every call is bounded.
/// </summary>
internal sealed class ChromiumSession : IAsyncDisposable
{
    // Generous: the suite shares two cores with builds, and chromium's many processes start slowly under load.
    static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);
    static readonly TimeSpan LaunchTimeout = TimeSpan.FromSeconds(60);

    readonly Process _process;
    readonly string _profile;
    readonly ClientWebSocket _socket = new();
    readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> _pending = new();
    readonly CancellationTokenSource _closing = new();
    Task _receiver = Task.CompletedTask;
    int _nextId;

    /// <summary>Page errors seen so far: uncaught exceptions, console.error calls, errors the browser logged (e.g. CSP violations).</summary>
    public ConcurrentQueue<string> PageErrors { get; } = new();

    ChromiumSession(Process process, string profile)
    {
        _process = process;
        _profile = profile;
    }

    /// <summary>Debian's chromium (or $PIXARTLORA_CHROMIUM), or null when there is none.</summary>
    public static string? Find()
    {
        var candidates = new[] { Environment.GetEnvironmentVariable("PIXARTLORA_CHROMIUM"), "/usr/bin/chromium" };
        return candidates.FirstOrDefault(p => !string.IsNullOrEmpty(p) && File.Exists(p));
    }

    public static async Task<ChromiumSession> LaunchAsync(string executable)
    {
        string profile = TestPaths.NewTempDir("chromium");
        var info = new ProcessStartInfo(executable) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--no-default-browser-check", "--disable-extensions", "--disable-background-networking", "--disable-sync",
                     "--disable-component-update", "--hide-scrollbars", "--remote-debugging-address=127.0.0.1",
                     "--remote-debugging-port=0", $"--user-data-dir={profile}", "--window-size=1280,900", "about:blank",
                 })
            info.ArgumentList.Add(arg);
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {executable}");
        var session = new ChromiumSession(process, profile);
        try
        {
            _ = process.StandardOutput.ReadToEndAsync();
            string browserUrl = await ReadDevToolsUrlAsync(process);
            var port = new Uri(browserUrl).Port;
            using var http = new HttpClient { Timeout = CallTimeout };
            var targets = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list")).RootElement;
            string pageUrl = targets.EnumerateArray().First(t => t.GetProperty("type").GetString() == "page")
                .GetProperty("webSocketDebuggerUrl").GetString()!;
            using var connect = new CancellationTokenSource(CallTimeout);
            await session._socket.ConnectAsync(new Uri(pageUrl), connect.Token);
            session._receiver = Task.Run(session.ReceiveAsync);
            foreach (var domain in new[] { "Page.enable", "Runtime.enable", "Log.enable" }) await session.SendAsync(domain);
            return session;
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
    }

    // Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" once the port is open.
    static async Task<string> ReadDevToolsUrlAsync(Process process)
    {
        using var timeout = new CancellationTokenSource(LaunchTimeout);
        var seen = new StringBuilder();
        while (await process.StandardError.ReadLineAsync(timeout.Token) is { } line)
        {
            seen.AppendLine(line);
            var match = Regex.Match(line, @"DevTools listening on (ws://\S+)");
            if (match.Success)
            {
                _ = process.StandardError.ReadToEndAsync(); // keep draining so chromium never blocks on a full pipe
                return match.Groups[1].Value;
            }
        }
        throw new InvalidOperationException($"chromium exited before opening its DevTools port:\n{seen}");
    }

    public async Task<JsonElement> SendAsync(string method, object? parameters = null)
    {
        int id = Interlocked.Increment(ref _nextId);
        var reply = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        byte[] message = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters ?? new { } });
        using var timeout = new CancellationTokenSource(CallTimeout);
        await _socket.SendAsync(message, WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        var result = await reply.Task.WaitAsync(CallTimeout);
        if (result.TryGetProperty("error", out var error)) throw new InvalidOperationException($"{method}: {error}");
        return result.GetProperty("result");
    }

    /// <summary>Evaluates <paramref name="expression"/> in the page (awaiting promises) and returns its JSON value.</summary>
    public async Task<JsonElement> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new { expression, returnByValue = true, awaitPromise = true });
        if (result.TryGetProperty("exceptionDetails", out var details)) throw new InvalidOperationException($"page script failed: {details}");
        return result.GetProperty("result").TryGetProperty("value", out var value) ? value : default;
    }

    /// <summary>Polls <paramref name="condition"/> (a JavaScript boolean expression) until it holds.</summary>
    public async Task WaitForAsync(string condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? CallTimeout);
        while ((await EvaluateAsync($"!!({condition})")).ValueKind != JsonValueKind.True)
        {
            if (DateTime.UtcNow > deadline)
            {
                string text = (await EvaluateAsync("(document.body?.innerText ?? '').slice(0, 600)")).ToString();
                throw new TimeoutException($"page never showed {what}; page errors: [{string.Join(" | ", PageErrors)}]; page text: {text}");
            }
            await Task.Delay(50);
        }
    }

    public async Task NavigateAsync(string url)
    {
        await SendAsync("Page.navigate", new { url });
        await WaitForAsync("document.readyState === 'complete' && location.href !== 'about:blank'", $"{url} loaded");
    }

    public Task SetViewportAsync(int width, int height, bool mobile = false) =>
        SendAsync("Emulation.setDeviceMetricsOverride", new { width, height, deviceScaleFactor = 1, mobile });

    public Task SetColorSchemeAsync(string scheme) =>
        SendAsync("Emulation.setEmulatedMedia", new { features = new[] { new { name = "prefers-color-scheme", value = scheme } } });

    /// <summary>Focuses the element and types <paramref name="text"/> as keyboard input would.</summary>
    public async Task TypeAsync(string selector, string text)
    {
        await EvaluateAsync($"document.querySelector({JsonSerializer.Serialize(selector)}).focus()");
        await SendAsync("Input.insertText", new { text });
    }

    /// <summary>Scrolls the element into view and clicks its centre with mouse events.</summary>
    public async Task ClickAsync(string selector)
    {
        var box = await EvaluateAsync($$"""
            (() => { const e = document.querySelector({{JsonSerializer.Serialize(selector)}}); e.scrollIntoView({block: 'nearest'});
                     const r = e.getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()
            """);
        double x = box.GetProperty("x").GetDouble(), y = box.GetProperty("y").GetDouble();
        await SendAsync("Input.dispatchMouseEvent", new { type = "mouseMoved", x, y });
        await SendAsync("Input.dispatchMouseEvent", new { type = "mousePressed", x, y, button = "left", clickCount = 1 });
        await SendAsync("Input.dispatchMouseEvent", new { type = "mouseReleased", x, y, button = "left", clickCount = 1 });
    }

    /// <summary>A PNG of the viewport, or of the whole page when <paramref name="fullPage"/>.</summary>
    public async Task<byte[]> ScreenshotAsync(bool fullPage = false)
    {
        object parameters = new { format = "png" };
        if (fullPage)
        {
            var size = await EvaluateAsync("({w: document.documentElement.clientWidth, h: document.documentElement.scrollHeight})");
            parameters = new
            {
                format = "png", captureBeyondViewport = true,
                clip = new { x = 0, y = 0, width = size.GetProperty("w").GetDouble(), height = size.GetProperty("h").GetDouble(), scale = 1 },
            };
        }
        var result = await SendAsync("Page.captureScreenshot", parameters);
        return Convert.FromBase64String(result.GetProperty("data").GetString()!);
    }

    async Task ReceiveAsync()
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open)
            {
                var part = await _socket.ReceiveAsync(buffer, _closing.Token);
                if (part.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, part.Count);
                if (!part.EndOfMessage) continue;
                var root = JsonDocument.Parse(message.ToArray()).RootElement.Clone();
                message.SetLength(0);
                if (root.TryGetProperty("id", out var id) && _pending.TryRemove(id.GetInt32(), out var reply)) reply.TrySetResult(root);
                else if (root.TryGetProperty("method", out var method)) OnEvent(method.GetString()!, root.GetProperty("params"));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException) { }
        foreach (var reply in _pending.Values) reply.TrySetException(new InvalidOperationException("chromium closed the DevTools connection"));
    }

    void OnEvent(string method, JsonElement data)
    {
        switch (method)
        {
            case "Runtime.exceptionThrown":
                PageErrors.Enqueue($"exception: {data.GetProperty("exceptionDetails")}");
                break;
            case "Runtime.consoleAPICalled" when data.GetProperty("type").GetString() == "error":
                PageErrors.Enqueue($"console.error: {data.GetProperty("args")}");
                break;
            // Network entries are HTTP statuses the page handles itself (a 400 it shows as a message).
            case "Log.entryAdded" when data.GetProperty("entry").GetProperty("level").GetString() == "error"
                                       && data.GetProperty("entry").GetProperty("source").GetString() != "network":
                var entry = data.GetProperty("entry");
                PageErrors.Enqueue($"log: {entry.GetProperty("text").GetString()} ({(entry.TryGetProperty("url", out var url) ? url.GetString() : "")})");
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _closing.Cancel();
        try { _socket.Abort(); } catch (WebSocketException) { }
        await _receiver.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { });
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
        }
        _process.Dispose();
        _socket.Dispose();
        try { Directory.Delete(_profile, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
