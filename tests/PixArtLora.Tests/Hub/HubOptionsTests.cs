using PixArtLora.Hub;

namespace PixArtLora.Tests.Hub;

/// <summary>Environment variables read as huggingface_hub reads them; patterns matched as its allow_patterns.</summary>
public class HubOptionsTests
{
    static Func<string, string?> Env(params (string Key, string Value)[] vars)
    {
        var d = vars.ToDictionary(v => v.Key, v => v.Value);
        return k => d.GetValueOrDefault(k);
    }

    [Fact]
    public void CacheFolderPrecedenceIsHfHubCacheThenHfHomeThenUserCache()
    {
        Assert.Equal("/a/hub-cache", HubOptions.FromEnvironment(Env(("HF_HUB_CACHE", "/a/hub-cache"), ("HF_HOME", "/b"))).CacheDir);
        Assert.Equal(Path.Combine("/b", "hub"), HubOptions.FromEnvironment(Env(("HF_HOME", "/b"))).CacheDir);
        Assert.Equal(Path.Combine("/x", "huggingface", "hub"), HubOptions.FromEnvironment(Env(("XDG_CACHE_HOME", "/x"))).CacheDir);
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Equal(Path.Combine(home, ".cache", "huggingface", "hub"), HubOptions.FromEnvironment(Env()).CacheDir);
        Assert.Equal(Path.Combine(home, "models"), HubOptions.FromEnvironment(Env(("HF_HUB_CACHE", "~/models"))).CacheDir);
    }

    [Fact]
    public void EndpointTokenAndOfflineComeFromTheEnvironment()
    {
        string home = TestPaths.NewTempDir("hf-home");
        File.WriteAllText(Path.Combine(home, "token"), "hf_from_file\n");

        var fromFile = HubOptions.FromEnvironment(Env(("HF_HOME", home), ("HF_ENDPOINT", "http://127.0.0.1:1/")));
        Assert.Equal("hf_from_file", fromFile.Token);
        Assert.Equal("http://127.0.0.1:1", fromFile.Endpoint);
        Assert.False(fromFile.Offline);
        Assert.Equal("hf_env", HubOptions.FromEnvironment(Env(("HF_HOME", home), ("HF_TOKEN", "hf_env"))).Token);
        Assert.Null(HubOptions.FromEnvironment(Env(("HF_HOME", TestPaths.NewTempDir("empty-home")))).Token);
        Assert.Equal(HubOptions.DefaultEndpoint, HubOptions.FromEnvironment(Env()).Endpoint);

        foreach (var on in new[] { "1", "true", "YES", "on" })
            Assert.True(HubOptions.FromEnvironment(Env(("HF_HUB_OFFLINE", on))).Offline);
        Assert.False(HubOptions.FromEnvironment(Env(("HF_HUB_OFFLINE", "0"))).Offline);
        Assert.True(HubOptions.FromEnvironment(Env(("TRANSFORMERS_OFFLINE", "1"))).Offline);
    }

    [Theory]
    [InlineData("transformer/config.json", "transformer/", true)]
    [InlineData("transformer/sub/x.bin", "transformer/", true)]
    [InlineData("text_encoder/model.safetensors", "transformer/", false)]
    [InlineData("data/train-00000-of-00002.parquet", "*.parquet", true)]
    [InlineData("data/train.parquet.lock", "*.parquet", false)]
    [InlineData("model_index.json", "model_index.json", true)]
    [InlineData("Model_index.json", "model_index.json", false)]
    [InlineData("vae/diffusion_pytorch_model.fp16.safetensors", "vae/*.fp16.*", true)]
    [InlineData("a1.bin", "a[0-9].bin", true)]
    [InlineData("a1.bin", "a[!0-9].bin", false)]
    public void PatternsMatchLikeFnmatch(string path, string pattern, bool expected) =>
        Assert.Equal(expected, HubFilePatterns.Matches(path, pattern));

    [Theory]
    [InlineData("PixArt-alpha/PixArt-Sigma-XL-2-1024-MS", true)]
    [InlineData("gpt2", true)]
    [InlineData("../etc", false)]
    [InlineData("a/b/c", false)]
    [InlineData("org--x/name", false)]
    [InlineData("/abs/path", false)]
    public void RepoIdsAreValidatedLikeHuggingfaceHub(string id, bool valid) => Assert.Equal(valid, HubRepo.IsValidId(id));

    [Fact]
    public void CacheFolderNamesFollowTheHubConvention()
    {
        Assert.Equal("models--PixArt-alpha--PixArt-XL-2-1024-MS", new HubRepo("PixArt-alpha/PixArt-XL-2-1024-MS", HubRepoType.Model).CacheFolderName);
        Assert.Equal("datasets--lambdalabs--pokemon-blip-captions", new HubRepo("lambdalabs/pokemon-blip-captions", HubRepoType.Dataset).CacheFolderName);
    }
}
