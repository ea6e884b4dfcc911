using System.Text.Json;

namespace PixArtLora.Hub;

/// <summary>
/// Turns a model or dataset id into local files, the way diffusers' <c>from_pretrained</c> does: a local folder
/// is used as it is; otherwise the Hub lists the repository at the revision, only the requested files are
/// downloaded (into the Hugging Face cache, shared with Python tools), and files already cached are reused.
/// Offline (<see cref="HubOptions.Offline"/>), or when the Hub cannot be reached, the cache alone is used and a
/// missing file is named.
/// </summary>
public sealed class HubClient : IDisposable
{
    readonly HubHttp _http;

    /// <summary>The options in use.</summary>
    public HubOptions Options { get; }

    /// <summary>The cache layout in use.</summary>
    public HubCache Cache { get; }

    /// <param name="options">endpoint, cache, token, offline; default <see cref="HubOptions.FromEnvironment"/></param>
    /// <param name="handler">HTTP handler (proxies, tests); must not follow redirects itself</param>
    public HubClient(HubOptions? options = null, HttpMessageHandler? handler = null)
    {
        Options = options ?? HubOptions.FromEnvironment();
        Cache = new HubCache(Options.CacheDir);
        _http = new HubHttp(Options, handler);
    }

    /// <summary>
    /// Makes the files of <paramref name="idOrPath"/> that match <paramref name="patterns"/> available locally.
    /// </summary>
    /// <param name="idOrPath">a local folder, or a Hub id such as <c>PixArt-alpha/PixArt-Sigma-XL-2-1024-MS</c></param>
    /// <param name="type">model or dataset</param>
    /// <param name="patterns">which files (fnmatch, <c>transformer/</c> for a folder, see <see cref="HubFilePatterns"/>);
    /// each must match at least one file; null for all files</param>
    /// <param name="revision">branch, tag or commit</param>
    /// <param name="progress">per-file progress</param>
    /// <param name="ct">cancellation</param>
    public async Task<HubSnapshot> ResolveAsync(string idOrPath, HubRepoType type = HubRepoType.Model, IReadOnlyList<string>? patterns = null,
        string revision = "main", IProgress<HubFileProgress>? progress = null, CancellationToken ct = default)
    {
        if (Directory.Exists(idOrPath))
        {
            string folder = Path.GetFullPath(idOrPath);
            var local = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/'))
                .OrderBy(f => f, StringComparer.Ordinal);
            return new HubSnapshot(null, folder, null, HubFilePatterns.Select(local, patterns), HubSnapshotOrigin.LocalFolder);
        }
        if (!HubRepo.IsValidId(idOrPath))
            throw new HubException($"'{idOrPath}' is neither an existing folder nor a Hugging Face id (org/name)");
        var repo = new HubRepo(idOrPath, type);

        if (Options.Offline)
            return FromCache(repo, revision, patterns, "offline mode (HF_HUB_OFFLINE=1) allows no download", null);

        RemoteListing listing;
        try
        {
            listing = await ListAsync(repo, revision, ct);
        }
        catch (HubTransientException e)
        {
            return FromCache(repo, revision, patterns, $"the Hub could not be reached ({e.Message})", e);
        }
        return await DownloadAsync(repo, revision, listing, patterns, progress, ct);
    }

    /// <summary>Synchronous <see cref="ResolveAsync"/>.</summary>
    public HubSnapshot Resolve(string idOrPath, HubRepoType type = HubRepoType.Model, IReadOnlyList<string>? patterns = null,
        string revision = "main", IProgress<HubFileProgress>? progress = null, CancellationToken ct = default) =>
        ResolveAsync(idOrPath, type, patterns, revision, progress, ct).GetAwaiter().GetResult();

    /// <summary>The local path of one file of a repository (downloaded if needed).</summary>
    public async Task<string> GetFileAsync(string idOrPath, string path, HubRepoType type = HubRepoType.Model, string revision = "main",
        IProgress<HubFileProgress>? progress = null, CancellationToken ct = default)
    {
        var snapshot = await ResolveAsync(idOrPath, type, new[] { path }, revision, progress, ct);
        string local = snapshot.PathOf(path);
        return File.Exists(local) ? local : throw new HubFileMissingException($"{idOrPath}: no file '{path}' in {snapshot.Folder}");
    }

    /// <summary>
    /// The local path of one folder of a repository (e.g. <c>vae</c> of <c>PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers</c>),
    /// with every file under it downloaded if needed; for a local folder, that folder's subfolder.
    /// </summary>
    public async Task<string> GetFolderAsync(string idOrPath, string subfolder, HubRepoType type = HubRepoType.Model, string revision = "main",
        IProgress<HubFileProgress>? progress = null, CancellationToken ct = default)
    {
        string prefix = subfolder.Trim('/');
        var snapshot = await ResolveAsync(idOrPath, type, prefix.Length == 0 ? null : new[] { prefix + "/" }, revision, progress, ct);
        string local = prefix.Length == 0 ? snapshot.Folder : snapshot.PathOf(prefix);
        return Directory.Exists(local) ? local : throw new HubFileMissingException($"{idOrPath}: no folder '{prefix}' in {snapshot.Folder}");
    }

    /// <summary>Synchronous <see cref="GetFolderAsync"/>.</summary>
    public string GetFolder(string idOrPath, string subfolder, HubRepoType type = HubRepoType.Model, string revision = "main",
        IProgress<HubFileProgress>? progress = null, CancellationToken ct = default) =>
        GetFolderAsync(idOrPath, subfolder, type, revision, progress, ct).GetAwaiter().GetResult();

    async Task<HubSnapshot> DownloadAsync(HubRepo repo, string revision, RemoteListing listing, IReadOnlyList<string>? patterns,
        IProgress<HubFileProgress>? progress, CancellationToken ct)
    {
        var byPath = listing.Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        var wanted = HubFilePatterns.Select(listing.Files.Select(f => f.Path), patterns);
        foreach (var pattern in patterns ?? Array.Empty<string>())
            if (!wanted.Any(p => HubFilePatterns.Matches(p, pattern)))
                throw new HubNotFoundException($"{repo} at {revision} (commit {listing.Commit}) has no file matching '{pattern}'; " +
                                               $"it has {Sample(listing.Files.Select(f => f.Path))}");
        Cache.WriteRef(repo, revision, listing.Commit);

        bool downloaded = false;
        foreach (var path in wanted)
        {
            var file = byPath[path];
            string pointer = Cache.PointerPath(repo, listing.Commit, path);
            if (HubCache.IsPresent(pointer))
            {
                progress?.Report(new HubFileProgress(repo, path, new FileInfo(pointer).Length, file.Size, HubFileStage.Cached));
                continue;
            }
            var url = repo.ResolveUrl(Options.Endpoint, listing.Commit, path);
            if (file.Etag == null || file.Size == null) file = await HeadAsync(repo, file, url, ct);
            string blob = Cache.BlobPath(repo, file.Etag!);
            using (await HubCache.AcquireLockAsync(Cache.LockPath(repo, file.Etag!), Options.LockTimeout, ct))
            {
                // Another process may have finished this blob while we waited for the lock.
                if (!File.Exists(blob))
                {
                    await HubFileDownloader.DownloadAsync(_http, Options, repo, file, url, blob, progress, ct);
                    downloaded = true;
                }
                else progress?.Report(new HubFileProgress(repo, path, new FileInfo(blob).Length, file.Size, HubFileStage.Cached));
                HubCache.Link(blob, pointer);
            }
        }
        return new HubSnapshot(repo, Cache.SnapshotFolder(repo, listing.Commit), listing.Commit, wanted,
            downloaded ? HubSnapshotOrigin.Downloaded : HubSnapshotOrigin.Cache);
    }

    HubSnapshot FromCache(HubRepo repo, string revision, IReadOnlyList<string>? patterns, string why, Exception? inner)
    {
        string? commit = Cache.FindCommit(repo, revision);
        if (commit == null)
            throw new HubFileMissingException($"{repo} (revision '{revision}') is not in the Hugging Face cache at {Cache.Root} and {why}. " +
                                              "Download it once while online, or give a local folder instead of the id", inner);
        var files = Cache.SnapshotFiles(repo, commit);
        var wanted = HubFilePatterns.Select(files, patterns);
        foreach (var pattern in patterns ?? Array.Empty<string>())
        {
            if (wanted.Any(p => HubFilePatterns.Matches(p, pattern))) continue;
            string what = HubFilePatterns.IsLiteral(pattern) ? $"the file '{pattern}' is missing" : $"no file matching '{pattern}' is there";
            throw new HubFileMissingException($"{repo}: {what} in the cached snapshot {Cache.SnapshotFolder(repo, commit)} and {why}", inner);
        }
        return new HubSnapshot(repo, Cache.SnapshotFolder(repo, commit), commit, wanted, HubSnapshotOrigin.Cache);
    }

    async Task<RemoteListing> ListAsync(HubRepo repo, string revision, CancellationToken ct)
    {
        var url = repo.RevisionApiUrl(Options.Endpoint, revision);
        using var response = await _http.SendAsync(HttpMethod.Get, url, repo, $"{repo}: listing files at '{revision}'", null, ct);
        byte[] body;
        try { body = await response.Content.ReadAsByteArrayAsync(ct); }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw new HubTransientException($"{repo}: the file listing broke off ({e.Message})", e);
        }
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            string commit = root.TryGetProperty("sha", out var sha) && sha.GetString() is { } s ? s
                : throw new HubException($"{repo}: the listing at {url} has no commit 'sha'");
            if (!HubRepo.IsCommitHash(commit)) throw new HubException($"{repo}: the listing at {url} gives commit '{commit}', expected 40 hex digits");
            if (!root.TryGetProperty("siblings", out var siblings) || siblings.ValueKind != JsonValueKind.Array)
                throw new HubException($"{repo}: the listing at {url} has no 'siblings' array");
            var files = new List<HubRemoteFile>();
            foreach (var f in siblings.EnumerateArray())
            {
                string path = HubCache.CheckRepoPath(f.GetProperty("rfilename").GetString() ?? "", repo);
                bool lfs = f.TryGetProperty("lfs", out var l) && l.ValueKind == JsonValueKind.Object;
                string? etag = lfs && l.TryGetProperty("sha256", out var h) ? h.GetString()
                    : f.TryGetProperty("blobId", out var b) ? b.GetString() : null;
                long? size = lfs && l.TryGetProperty("size", out var ls) ? ls.GetInt64()
                    : f.TryGetProperty("size", out var sz) && sz.ValueKind == JsonValueKind.Number ? sz.GetInt64() : null;
                files.Add(new HubRemoteFile(path, size, etag, lfs));
            }
            return new RemoteListing(commit, files);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new HubException($"{repo}: the listing at {url} is not the Hub's JSON ({e.Message})");
        }
    }

    /// <summary>The ETag and size of a file the listing left without (the Hub puts X-Linked-* on its redirect).</summary>
    async Task<HubRemoteFile> HeadAsync(HubRepo repo, HubRemoteFile file, Uri url, CancellationToken ct)
    {
        string? etag = null, linkedSize = null;
        bool lfs = file.IsLfs;
        using var response = await _http.SendAsync(HttpMethod.Head, url, repo, $"{repo}: {file.Path}", null, ct, hop =>
        {
            if (etag == null && HubHttp.Header(hop, "X-Linked-Etag") is { } linked) { etag = linked; lfs = true; }
            etag ??= hop.Headers.ETag?.Tag;
            linkedSize ??= HubHttp.Header(hop, "X-Linked-Size");
        });
        long? size = long.TryParse(linkedSize, out var ls) ? ls : response.Content.Headers.ContentLength;
        string normalized = (file.Etag ?? etag)?.Replace("W/", "").Trim('"')
            ?? throw new HubException($"{repo}: the Hub gave no ETag for {file.Path} at {url.GetLeftPart(UriPartial.Path)}");
        return file with { Etag = normalized, Size = file.Size ?? size, IsLfs = lfs };
    }

    static string Sample(IEnumerable<string> paths)
    {
        var list = paths.Take(11).ToList();
        return list.Count == 0 ? "no files" : string.Join(", ", list.Take(10)) + (list.Count > 10 ? ", ..." : "");
    }

    sealed record RemoteListing(string Commit, List<HubRemoteFile> Files);

    public void Dispose() => _http.Dispose();
}
