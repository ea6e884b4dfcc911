using PixArtLora.Hub;
using static PixArtLora.Tests.Hub.FakeHubServer;

namespace PixArtLora.Tests.Hub;

/// <summary>The real client against a loopback server that behaves like the Hub.</summary>
public class HubClientTests
{
    const string RepoId = "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS";

    static HubOptions Options(FakeHubServer server, string cache, string? token = null, bool offline = false) => new()
    {
        Endpoint = server.Endpoint,
        CacheDir = cache,
        Token = token,
        Offline = offline,
        RequestTimeout = TimeSpan.FromSeconds(10),
        ReadTimeout = TimeSpan.FromSeconds(10),
        RetryDelay = TimeSpan.FromMilliseconds(10),
        LockTimeout = TimeSpan.FromSeconds(60),
    };

    static byte[] Bytes(int n, int seed) => new Random(seed).GetItems(Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(), n);

    static FakeRepo PixArtLikeRepo(FakeHubServer server, string? token = null)
    {
        var repo = server.Add(new FakeRepo { Id = RepoId, RequiredToken = token });
        repo.Files["model_index.json"] = new FakeFile("{\"_class_name\": \"PixArtSigmaPipeline\"}"u8.ToArray(), Lfs: false);
        repo.Files["transformer/config.json"] = new FakeFile("{\"num_layers\": 28}"u8.ToArray(), Lfs: false);
        repo.Files["transformer/diffusion_pytorch_model.safetensors"] = new FakeFile(Bytes(3_000_000, 1), Lfs: true);
        repo.Files["vae/diffusion_pytorch_model.safetensors"] = new FakeFile(Bytes(50_000, 2), Lfs: true);
        return repo;
    }

    [Fact]
    public async Task FreshDownloadFetchesOnlyRequestedFilesIntoTheHuggingFaceCacheLayout()
    {
        using var server = new FakeHubServer();
        var repo = PixArtLikeRepo(server);
        string cache = TestPaths.NewTempDir("hub-cache");
        using var client = new HubClient(Options(server, cache));
        var seen = new List<HubFileProgress>();

        var snap = await client.ResolveAsync(RepoId, patterns: new[] { "transformer/", "model_index.json" }, progress: new SyncProgress<HubFileProgress>(seen.Add));

        Assert.Equal(HubSnapshotOrigin.Downloaded, snap.Origin);
        Assert.Equal(repo.Commit, snap.Commit);
        Assert.Equal(new[] { "model_index.json", "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors" }, snap.Files);
        foreach (var f in snap.Files) Assert.Equal(repo.Files[f].Data, File.ReadAllBytes(snap.PathOf(f)));

        string repoDir = Path.Combine(cache, "models--PixArt-alpha--PixArt-Sigma-XL-2-1024-MS");
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(repoDir, "refs", "main")));
        Assert.Equal(Path.Combine(repoDir, "snapshots", repo.Commit), snap.Folder);
        // Snapshot entries are relative symlinks to blobs named by sha256 (LFS) or git blob id (regular files).
        var weights = new FileInfo(Path.Combine(snap.Folder, "transformer", "diffusion_pytorch_model.safetensors"));
        Assert.Equal($"../../../blobs/{repo.Files["transformer/diffusion_pytorch_model.safetensors"].Sha256}", weights.LinkTarget);
        var index = new FileInfo(Path.Combine(snap.Folder, "model_index.json"));
        Assert.Equal($"../../blobs/{repo.Files["model_index.json"].GitBlobId}", index.LinkTarget);
        Assert.Equal(3, Directory.GetFiles(Path.Combine(repoDir, "blobs")).Length);

        Assert.DoesNotContain(server.Requests, r => r.Path.Contains("vae/"));
        Assert.Contains(seen, p => p.Stage == HubFileStage.Completed && p.File == "transformer/diffusion_pytorch_model.safetensors" && p.BytesDone == 3_000_000);
        Assert.Contains(seen, p => p.Stage == HubFileStage.Downloading && p.TotalBytes == 3_000_000 && p.BytesDone < 3_000_000);
    }

    [Fact]
    public async Task CachedFilesAreReusedOnlineAndWhenTheServerIsGone()
    {
        string cache = TestPaths.NewTempDir("hub-cache");
        string endpoint;
        byte[] weights;
        using (var server = new FakeHubServer())
        {
            var repo = PixArtLikeRepo(server);
            weights = repo.Files["transformer/diffusion_pytorch_model.safetensors"].Data;
            endpoint = server.Endpoint;
            using var client = new HubClient(Options(server, cache));
            await client.ResolveAsync(RepoId, patterns: new[] { "transformer/" });
            int before = server.Requests.Count(r => r.Path.Contains("/resolve/") || r.Cdn);

            var again = await client.ResolveAsync(RepoId, patterns: new[] { "transformer/" });
            Assert.Equal(HubSnapshotOrigin.Cache, again.Origin);
            Assert.Equal(before, server.Requests.Count(r => r.Path.Contains("/resolve/") || r.Cdn));
        }

        // Server stopped: the listing fails to connect and the cached snapshot is used.
        using var offline = new HubClient(new HubOptions { Endpoint = endpoint, CacheDir = cache, RequestTimeout = TimeSpan.FromSeconds(5) });
        var snap = await offline.ResolveAsync(RepoId, patterns: new[] { "transformer/" });
        Assert.Equal(HubSnapshotOrigin.Cache, snap.Origin);
        Assert.Equal(weights, File.ReadAllBytes(snap.PathOf("transformer/diffusion_pytorch_model.safetensors")));

        var missing = await Assert.ThrowsAsync<HubFileMissingException>(() => offline.ResolveAsync(RepoId, patterns: new[] { "vae/" }));
        Assert.Contains("'vae/'", missing.Message);
        Assert.Contains("could not be reached", missing.Message);
    }

    [Fact]
    public async Task DisconnectMidFileResumesWithARangeRequestAndGivesTheRightBytes()
    {
        using var server = new FakeHubServer { DisconnectAfterBytes = 100_000 };
        var repo = PixArtLikeRepo(server);
        var file = repo.Files["transformer/diffusion_pytorch_model.safetensors"];
        server.DisconnectFirstTransfers[file.Sha256] = 2;
        using var client = new HubClient(Options(server, TestPaths.NewTempDir("hub-cache")));
        var seen = new List<HubFileProgress>();

        var snap = await client.ResolveAsync(RepoId, patterns: new[] { "transformer/diffusion_pytorch_model.safetensors" }, progress: new SyncProgress<HubFileProgress>(seen.Add));

        Assert.Equal(file.Data, File.ReadAllBytes(snap.PathOf("transformer/diffusion_pytorch_model.safetensors")));
        var cdn = server.Requests.Where(r => r.Cdn).Select(r => r.Range).ToList();
        Assert.Equal(new string?[] { null, "bytes=100000-", "bytes=200000-" }, cdn);
        Assert.Equal(2, seen.Count(p => p.Stage == HubFileStage.Resuming));
    }

    [Fact]
    public async Task PartialFileLeftByAnEarlierRunIsResumed()
    {
        using var server = new FakeHubServer();
        var repo = PixArtLikeRepo(server);
        var file = repo.Files["transformer/diffusion_pytorch_model.safetensors"];
        string cache = TestPaths.NewTempDir("hub-cache");
        string blobs = Path.Combine(cache, "models--PixArt-alpha--PixArt-Sigma-XL-2-1024-MS", "blobs");
        Directory.CreateDirectory(blobs);
        File.WriteAllBytes(Path.Combine(blobs, file.Sha256 + ".incomplete"), file.Data[..123_456]);
        using var client = new HubClient(Options(server, cache));

        var snap = await client.ResolveAsync(RepoId, patterns: new[] { "transformer/diffusion_pytorch_model.safetensors" });

        Assert.Equal(file.Data, File.ReadAllBytes(snap.PathOf("transformer/diffusion_pytorch_model.safetensors")));
        Assert.Equal(new[] { "bytes=123456-" }, server.Requests.Where(r => r.Cdn).Select(r => r.Range));
        Assert.False(File.Exists(Path.Combine(blobs, file.Sha256 + ".incomplete")));
    }

    [Fact]
    public async Task CorruptBytesAreRejectedAndNothingIsLinked()
    {
        using var server = new FakeHubServer();
        var repo = PixArtLikeRepo(server);
        var file = repo.Files["transformer/diffusion_pytorch_model.safetensors"];
        server.Corrupt.Add(file.Sha256);
        string cache = TestPaths.NewTempDir("hub-cache");
        using var client = new HubClient(Options(server, cache));

        var e = await Assert.ThrowsAsync<HubIntegrityException>(() => client.ResolveAsync(RepoId, patterns: new[] { "transformer/diffusion_pytorch_model.safetensors" }));
        Assert.Contains(file.Sha256, e.Message);
        string repoDir = Path.Combine(cache, "models--PixArt-alpha--PixArt-Sigma-XL-2-1024-MS");
        Assert.Empty(Directory.GetFiles(Path.Combine(repoDir, "blobs")));
        Assert.False(Directory.Exists(Path.Combine(repoDir, "snapshots", repo.Commit, "transformer")));
    }

    [Fact]
    public async Task OfflineModeNeverTouchesTheNetworkAndNamesTheMissingFile()
    {
        using var server = new FakeHubServer();
        PixArtLikeRepo(server);
        string cache = TestPaths.NewTempDir("hub-cache");
        using var offline = new HubClient(Options(server, cache, offline: true));

        var notCached = await Assert.ThrowsAsync<HubFileMissingException>(() => offline.ResolveAsync(RepoId, patterns: new[] { "transformer/" }));
        Assert.Contains("HF_HUB_OFFLINE=1", notCached.Message);
        Assert.Contains(RepoId, notCached.Message);

        using (var online = new HubClient(Options(server, cache)))
            await online.ResolveAsync(RepoId, patterns: new[] { "transformer/config.json" });
        int requests = server.Requests.Count;

        var snap = await offline.ResolveAsync(RepoId, patterns: new[] { "transformer/config.json" });
        Assert.Equal(HubSnapshotOrigin.Cache, snap.Origin);
        var missing = await Assert.ThrowsAsync<HubFileMissingException>(() =>
            offline.ResolveAsync(RepoId, patterns: new[] { "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors" }));
        Assert.Contains("'transformer/diffusion_pytorch_model.safetensors' is missing", missing.Message);
        Assert.Equal(requests, server.Requests.Count);
    }

    [Fact]
    public async Task GatedRepoSaysToLogInOrAcceptTheTermsAndTheTokenNeverLeavesTheHub()
    {
        using var server = new FakeHubServer();
        var repo = PixArtLikeRepo(server, token: "hf_secret");
        string cache = TestPaths.NewTempDir("hub-cache");

        using (var anonymous = new HubClient(Options(server, cache)))
        {
            var e = await Assert.ThrowsAsync<HubAccessDeniedException>(() => anonymous.ResolveAsync(RepoId, patterns: new[] { "transformer/" }));
            Assert.Contains($"log in or accept the model's terms at {server.Endpoint}/{RepoId}", e.Message);
            Assert.Contains("HTTP 401", e.Message);
        }

        using var authorized = new HubClient(Options(server, cache, token: "hf_secret"));
        var snap = await authorized.ResolveAsync(RepoId, patterns: new[] { "transformer/" });
        Assert.Equal(repo.Files["transformer/diffusion_pytorch_model.safetensors"].Data, File.ReadAllBytes(snap.PathOf("transformer/diffusion_pytorch_model.safetensors")));
        Assert.All(server.Requests.Where(r => !r.Cdn).Skip(1), r => Assert.Equal("Bearer hf_secret", r.Authorization));
        Assert.All(server.Requests.Where(r => r.Cdn), r => Assert.Null(r.Authorization));
    }

    [Fact]
    public async Task MissingRepoAndUnmatchedPatternAreNamed()
    {
        using var server = new FakeHubServer();
        PixArtLikeRepo(server);
        using var client = new HubClient(Options(server, TestPaths.NewTempDir("hub-cache")));

        var nf = await Assert.ThrowsAsync<HubNotFoundException>(() => client.ResolveAsync("someone/no-such-model"));
        Assert.Contains("someone/no-such-model", nf.Message);
        var pattern = await Assert.ThrowsAsync<HubNotFoundException>(() => client.ResolveAsync(RepoId, patterns: new[] { "text_encoder/" }));
        Assert.Contains("'text_encoder/'", pattern.Message);
        var rev = await Assert.ThrowsAsync<HubNotFoundException>(() => client.ResolveAsync(RepoId, revision: "v9"));
        Assert.Contains("revision not found", rev.Message);
    }

    [Fact]
    public async Task ListingWithoutBlobMetadataFallsBackToHeadRequests()
    {
        using var server = new FakeHubServer { OmitBlobMetadata = true };
        var repo = PixArtLikeRepo(server);
        using var client = new HubClient(Options(server, TestPaths.NewTempDir("hub-cache")));

        var snap = await client.ResolveAsync(RepoId, patterns: new[] { "transformer/" });

        Assert.Equal(repo.Files["transformer/diffusion_pytorch_model.safetensors"].Data, File.ReadAllBytes(snap.PathOf("transformer/diffusion_pytorch_model.safetensors")));
        Assert.Contains(server.Requests, r => r.Method == "HEAD");
        Assert.Equal($"../../../blobs/{repo.Files["transformer/config.json"].GitBlobId}",
            new FileInfo(snap.PathOf("transformer/config.json")).LinkTarget);
    }

    [Fact]
    public async Task ConcurrentClientsDownloadASharedBlobOnce()
    {
        using var server = new FakeHubServer { ChunkDelay = TimeSpan.FromMilliseconds(5) };
        var repo = PixArtLikeRepo(server);
        var file = repo.Files["transformer/diffusion_pytorch_model.safetensors"];
        string cache = TestPaths.NewTempDir("hub-cache");

        var runs = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            using var client = new HubClient(Options(server, cache));
            return await client.ResolveAsync(RepoId, patterns: new[] { "transformer/diffusion_pytorch_model.safetensors" });
        })).ToList();
        var snaps = await Task.WhenAll(runs);

        Assert.All(snaps, s => Assert.Equal(file.Data, File.ReadAllBytes(s.PathOf("transformer/diffusion_pytorch_model.safetensors"))));
        Assert.Equal(1, server.BodyTransfers(file.Sha256));
    }

    [Fact]
    public async Task GetFolderGivesTheLocalPathOfOneComponent()
    {
        using var server = new FakeHubServer();
        var repo = PixArtLikeRepo(server);
        using var client = new HubClient(Options(server, TestPaths.NewTempDir("hub-cache")));

        string vae = await client.GetFolderAsync(RepoId, "vae");

        Assert.EndsWith(Path.Combine("snapshots", repo.Commit, "vae"), vae);
        Assert.Equal(repo.Files["vae/diffusion_pytorch_model.safetensors"].Data, File.ReadAllBytes(Path.Combine(vae, "diffusion_pytorch_model.safetensors")));
        Assert.DoesNotContain(server.Requests, r => r.Path.Contains("transformer/"));
        string local = TestPaths.NewTempDir("local");
        Directory.CreateDirectory(Path.Combine(local, "vae"));
        Assert.Equal(Path.Combine(local, "vae"), await client.GetFolderAsync(local, "vae"));
    }

    [Fact]
    public async Task UnsafePathInAListingIsRefused()
    {
        using var server = new FakeHubServer();
        var repo = server.Add(new FakeRepo { Id = "evil/repo" });
        repo.Files["../../outside.txt"] = new FakeFile("x"u8.ToArray(), Lfs: false);
        using var client = new HubClient(Options(server, TestPaths.NewTempDir("hub-cache")));

        var e = await Assert.ThrowsAsync<HubException>(() => client.ResolveAsync("evil/repo"));
        Assert.Contains("not a safe relative path", e.Message);
    }

    [Fact]
    public async Task LocalFolderIsUsedAsItIs()
    {
        using var server = new FakeHubServer();
        string folder = TestPaths.NewTempDir("local-model");
        Directory.CreateDirectory(Path.Combine(folder, "transformer"));
        File.WriteAllText(Path.Combine(folder, "transformer", "config.json"), "{}");
        File.WriteAllText(Path.Combine(folder, "README.md"), "x");
        using var client = new HubClient(Options(server, TestPaths.NewTempDir("hub-cache")));

        var snap = await client.ResolveAsync(folder, patterns: new[] { "transformer/" });

        Assert.Equal(HubSnapshotOrigin.LocalFolder, snap.Origin);
        Assert.Equal(new[] { "transformer/config.json" }, snap.Files);
        Assert.Empty(server.Requests);
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; tests need the reports in order and complete.</summary>
    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        readonly object _gate = new();
        public void Report(T value) { lock (_gate) report(value); }
    }
}
