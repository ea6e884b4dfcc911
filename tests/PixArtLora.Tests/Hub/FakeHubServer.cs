using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using PixArtLora.Hub;

namespace PixArtLora.Tests.Hub;

/// <summary>
/// A real HTTP server on 127.0.0.1 that answers like the Hugging Face Hub: the revision API with per-file
/// sizes, blob ids and LFS sha256, <c>/resolve/</c> URLs that redirect LFS files to a "CDN" on a second port
/// (another origin, as the real CDN is) with X-Linked-Etag/X-Linked-Size/X-Repo-Commit, ETags, Range requests,
/// 401 for gated repos, and injectable faults (a disconnect part-way through a body, corrupt bytes).
/// </summary>
public sealed class FakeHubServer : IDisposable
{
    public sealed record FakeFile(byte[] Data, bool Lfs)
    {
        public string Sha256 => Convert.ToHexStringLower(SHA256.HashData(Data));

        // git's blob id: sha1("blob <size>\0" + contents)
        public string GitBlobId => Convert.ToHexStringLower(SHA1.HashData(Encoding.ASCII.GetBytes($"blob {Data.Length}\0").Concat(Data).ToArray()));

        public string Etag => Lfs ? Sha256 : GitBlobId;
    }

    public sealed class FakeRepo
    {
        public required string Id { get; init; }
        public HubRepoType Type { get; init; } = HubRepoType.Model;
        public string Commit { get; set; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));
        public Dictionary<string, FakeFile> Files { get; } = new();
        /// <summary>Branch names besides "main" that resolve to <see cref="Commit"/>.</summary>
        public HashSet<string> Branches { get; } = new() { "main" };
        /// <summary>When set, the repo is gated: requests need "Authorization: Bearer {token}".</summary>
        public string? RequiredToken { get; init; }
    }

    public sealed record LoggedRequest(string Method, string Path, string? Range, string? Authorization, bool Cdn);

    readonly HttpListener _listener = new();
    readonly Dictionary<(HubRepoType, string), FakeRepo> _repos = new();
    readonly ConcurrentDictionary<string, int> _bodyAttempts = new();
    readonly Task _loop;

    public int Port { get; }
    public int CdnPort { get; }
    public string Endpoint => $"http://127.0.0.1:{Port}";
    public ConcurrentQueue<LoggedRequest> Requests { get; } = new();

    /// <summary>The first N body transfers of a file (keyed by sha256/blob id) stop after DisconnectAfterBytes bytes.</summary>
    public Dictionary<string, int> DisconnectFirstTransfers { get; } = new();
    public long DisconnectAfterBytes { get; set; } = 64 * 1024;
    /// <summary>Files (by etag) whose bytes are served altered.</summary>
    public HashSet<string> Corrupt { get; } = new();
    /// <summary>Leave size/blobId/lfs out of the listing, as a Hub without blobs=true would.</summary>
    public bool OmitBlobMetadata { get; set; }
    /// <summary>Delay before each body chunk, to make transfers overlap in concurrency tests.</summary>
    public TimeSpan ChunkDelay { get; set; } = TimeSpan.Zero;

    public FakeHubServer()
    {
        (Port, CdnPort) = (FreePort(), FreePort());
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Prefixes.Add($"http://127.0.0.1:{CdnPort}/");
        _listener.Start();
        _loop = Task.Run(AcceptLoop);
    }

    public FakeRepo Add(FakeRepo repo)
    {
        lock (_repos) _repos[(repo.Type, repo.Id)] = repo;
        return repo;
    }

    async Task AcceptLoop()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            _ = Task.Run(async () =>
            {
                try { await Handle(ctx); }
                catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException) { }
                finally { try { ctx.Response.Close(); } catch (Exception) { } }
            });
        }
    }

    async Task Handle(HttpListenerContext ctx)
    {
        var req = ctx.Request;
        var res = ctx.Response;
        string rawPath = req.RawUrl!.Split('?')[0];
        bool cdn = req.LocalEndPoint.Port == CdnPort;
        Requests.Enqueue(new LoggedRequest(req.HttpMethod, rawPath, req.Headers["Range"], req.Headers["Authorization"], cdn));

        if (cdn && rawPath.StartsWith("/cdn/", StringComparison.Ordinal))
        {
            var file = FindByEtag(rawPath["/cdn/".Length..]);
            if (file == null) { res.StatusCode = 404; return; }
            await ServeBody(ctx, file);
            return;
        }
        if (rawPath.StartsWith("/api/models/", StringComparison.Ordinal) || rawPath.StartsWith("/api/datasets/", StringComparison.Ordinal))
        {
            var type = rawPath.StartsWith("/api/models/", StringComparison.Ordinal) ? HubRepoType.Model : HubRepoType.Dataset;
            string rest = rawPath[(type == HubRepoType.Model ? "/api/models/" : "/api/datasets/").Length..];
            int at = rest.IndexOf("/revision/", StringComparison.Ordinal);
            if (at < 0) { res.StatusCode = 404; return; }
            var repo = Find(type, rest[..at]);
            string revision = Uri.UnescapeDataString(rest[(at + "/revision/".Length)..]);
            if (!Authorized(ctx, repo)) return;
            if (repo == null) { NotFound(res, "RepoNotFound"); return; }
            if (!repo.Branches.Contains(revision) && revision != repo.Commit) { NotFound(res, "RevisionNotFound"); return; }
            await WriteJson(res, Listing(repo));
            return;
        }

        // /{id}/resolve/{rev}/{path} or /datasets/{id}/resolve/{rev}/{path}
        var rtype = rawPath.StartsWith("/datasets/", StringComparison.Ordinal) ? HubRepoType.Dataset : HubRepoType.Model;
        string r = rtype == HubRepoType.Dataset ? rawPath["/datasets/".Length..] : rawPath[1..];
        int resolve = r.IndexOf("/resolve/", StringComparison.Ordinal);
        if (resolve < 0) { res.StatusCode = 404; return; }
        var frepo = Find(rtype, r[..resolve]);
        if (!Authorized(ctx, frepo)) return;
        if (frepo == null) { NotFound(res, "RepoNotFound"); return; }
        string tail = r[(resolve + "/resolve/".Length)..];
        int slash = tail.IndexOf('/');
        string rev = Uri.UnescapeDataString(tail[..slash]);
        string path = string.Join('/', tail[(slash + 1)..].Split('/').Select(Uri.UnescapeDataString));
        if (!frepo.Branches.Contains(rev) && rev != frepo.Commit) { NotFound(res, "RevisionNotFound"); return; }
        if (!frepo.Files.TryGetValue(path, out var f)) { NotFound(res, "EntryNotFound"); return; }

        res.Headers["X-Repo-Commit"] = frepo.Commit;
        if (f.Lfs)
        {
            res.StatusCode = 302;
            res.Headers["Location"] = $"http://127.0.0.1:{CdnPort}/cdn/{f.Sha256}?X-Amz-Expires=3600";
            res.Headers["X-Linked-Etag"] = $"\"{f.Sha256}\"";
            res.Headers["X-Linked-Size"] = f.Data.Length.ToString();
            res.Headers["ETag"] = $"\"{f.GitBlobId}\"";
            return;
        }
        res.Headers["ETag"] = $"\"{f.GitBlobId}\"";
        await ServeBody(ctx, f);
    }

    async Task ServeBody(HttpListenerContext ctx, FakeFile file)
    {
        var res = ctx.Response;
        byte[] data = Corrupt.Contains(file.Etag) ? file.Data.Select((b, i) => i == file.Data.Length / 2 ? (byte)(b ^ 0xFF) : b).ToArray() : file.Data;
        long start = 0;
        if (ctx.Request.Headers["Range"] is { } range && range.StartsWith("bytes=", StringComparison.Ordinal))
        {
            start = long.Parse(range["bytes=".Length..].Split('-')[0]);
            if (start >= data.Length)
            {
                res.StatusCode = 416;
                res.Headers["Content-Range"] = $"bytes */{data.Length}";
                return;
            }
            res.StatusCode = 206;
            res.Headers["Content-Range"] = $"bytes {start}-{data.Length - 1}/{data.Length}";
        }
        res.Headers["Accept-Ranges"] = "bytes";
        res.ContentLength64 = data.Length - start;
        if (ctx.Request.HttpMethod == "HEAD") return;

        int attempt = _bodyAttempts.AddOrUpdate(file.Etag, 1, (_, n) => n + 1);
        bool cut = DisconnectFirstTransfers.TryGetValue(file.Etag, out int cuts) && attempt <= cuts;
        long end = cut ? Math.Min(data.Length, start + DisconnectAfterBytes) : data.Length;
        const int chunk = 16 * 1024;
        for (long pos = start; pos < end; pos += chunk)
        {
            if (ChunkDelay > TimeSpan.Zero) await Task.Delay(ChunkDelay);
            await res.OutputStream.WriteAsync(data.AsMemory((int)pos, (int)Math.Min(chunk, end - pos)));
        }
        if (cut)
        {
            await res.OutputStream.FlushAsync();
            res.Abort(); // drop the connection with the body unfinished
        }
    }

    /// <summary>How many body transfers of a file (by etag) began.</summary>
    public int BodyTransfers(string etag) => _bodyAttempts.GetValueOrDefault(etag);

    JsonObject Listing(FakeRepo repo)
    {
        var siblings = new JsonArray();
        foreach (var (path, f) in repo.Files.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var s = new JsonObject { ["rfilename"] = path };
            if (!OmitBlobMetadata)
            {
                s["size"] = f.Data.Length;
                s["blobId"] = f.GitBlobId;
                if (f.Lfs) s["lfs"] = new JsonObject { ["sha256"] = f.Sha256, ["size"] = f.Data.Length, ["pointerSize"] = 134 };
            }
            siblings.Add(s);
        }
        return new JsonObject { ["_id"] = "0", ["id"] = repo.Id, ["sha"] = repo.Commit, ["private"] = false, ["siblings"] = siblings };
    }

    bool Authorized(HttpListenerContext ctx, FakeRepo? repo)
    {
        if (repo?.RequiredToken == null) return true;
        if (ctx.Request.Headers["Authorization"] == $"Bearer {repo.RequiredToken}") return true;
        ctx.Response.StatusCode = 401;
        ctx.Response.Headers["X-Error-Code"] = "GatedRepo";
        ctx.Response.Headers["X-Error-Message"] = $"Access to model {repo.Id} is restricted. You must have access to it and be authenticated to access it. Please log in.";
        return false;
    }

    static void NotFound(HttpListenerResponse res, string code)
    {
        res.StatusCode = 404;
        res.Headers["X-Error-Code"] = code;
    }

    static async Task WriteJson(HttpListenerResponse res, JsonObject json)
    {
        byte[] body = Encoding.UTF8.GetBytes(json.ToJsonString());
        res.ContentType = "application/json";
        res.ContentLength64 = body.Length;
        await res.OutputStream.WriteAsync(body);
    }

    FakeRepo? Find(HubRepoType type, string id)
    {
        lock (_repos) return _repos.GetValueOrDefault((type, Uri.UnescapeDataString(id)));
    }

    FakeFile? FindByEtag(string sha)
    {
        lock (_repos) return _repos.Values.SelectMany(r => r.Files.Values).FirstOrDefault(f => f.Sha256 == sha);
    }

    static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        try { _listener.Stop(); _listener.Close(); } catch (ObjectDisposedException) { }
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }
}
