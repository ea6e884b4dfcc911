using static PixArtLora.Tests.Hub.FakeHubServer;

namespace PixArtLora.Tests.Hub;

/// <summary>
/// <c>lora download</c> as separate processes configured only through HF_* environment variables (set on the
/// child processes, never on this one): two processes fetching the same file share it through the cache lock.
/// </summary>
public class DownloadCliTests
{
    static async Task<(int Code, string Out, string Err)> RunLora(IDictionary<string, string?> env, params string[] args)
    {
        // The child sees no Hugging Face settings of this machine's, only the ones the test gives it.
        var environment = new Dictionary<string, string?>();
        foreach (var name in new[] { "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH" })
            environment[name] = null;
        foreach (var (k, v) in env) environment[k] = v;
        var result = await LoraProcess.RunAsync(TimeSpan.FromSeconds(120), args, environment);
        return (result.ExitCode, result.Stdout, result.Stderr);
    }

    [Fact]
    public async Task TwoProcessesDownloadingTheSameModelShareOneTransfer()
    {
        using var server = new FakeHubServer { ChunkDelay = TimeSpan.FromMilliseconds(10) };
        var repo = server.Add(new FakeRepo { Id = "PixArt-alpha/tiny" });
        var weights = new FakeFile(new Random(3).GetItems(Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(), 1 << 20), Lfs: true);
        repo.Files["transformer/diffusion_pytorch_model.safetensors"] = weights;
        repo.Files["transformer/config.json"] = new FakeFile("{}"u8.ToArray(), Lfs: false);
        repo.Files["vae/config.json"] = new FakeFile("{}"u8.ToArray(), Lfs: false);
        string home = TestPaths.NewTempDir("hf-home");
        var env = new Dictionary<string, string?> { ["HF_ENDPOINT"] = server.Endpoint, ["HF_HOME"] = home };

        var runs = await Task.WhenAll(
            RunLora(env, "download", "PixArt-alpha/tiny", "--include", "transformer/"),
            RunLora(env, "download", "PixArt-alpha/tiny", "--include", "transformer/"));

        string snapshot = Path.Combine(home, "hub", "models--PixArt-alpha--tiny", "snapshots", repo.Commit);
        foreach (var (code, stdout, stderr) in runs)
        {
            Assert.True(code == 0, stderr);
            Assert.Equal(snapshot, stdout.Trim().Split('\n').Last());
        }
        Assert.Equal(weights.Data, File.ReadAllBytes(Path.Combine(snapshot, "transformer", "diffusion_pytorch_model.safetensors")));
        Assert.Equal(1, server.BodyTransfers(weights.Sha256));

        env["HF_HUB_OFFLINE"] = "1";
        int before = server.Requests.Count;
        var (offlineCode, _, offlineErr) = await RunLora(env, "download", "PixArt-alpha/tiny", "--include", "vae/config.json");
        Assert.Equal(1, offlineCode);
        Assert.Contains("error:", offlineErr);
        Assert.Contains("'vae/config.json' is missing", offlineErr);
        Assert.Equal(before, server.Requests.Count);
    }
}
