namespace PixArtLora.Hub;

/// <summary>
/// Where models and datasets come from and go to. <see cref="FromEnvironment"/> reads the same variables as
/// Python's huggingface_hub, so the two share one cache and one login; tests construct options directly.
/// </summary>
public sealed record HubOptions
{
    /// <summary>The public Hub.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>Base URL of the Hub (<c>HF_ENDPOINT</c>), without a trailing slash.</summary>
    public string Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>The cache folder holding <c>models--org--name/</c> and <c>datasets--org--name/</c> (<c>HF_HUB_CACHE</c>).</summary>
    public string CacheDir { get; init; } = DefaultCacheDir(_ => null);

    /// <summary>Access token sent as <c>Authorization: Bearer</c> to the endpoint (never to redirect targets on other hosts).</summary>
    public string? Token { get; init; }

    /// <summary>Where a missing token would be read from; named in "log in" messages.</summary>
    public string TokenPath { get; init; } = Path.Combine(HfHome(_ => null), "token");

    /// <summary>Never touch the network (<c>HF_HUB_OFFLINE=1</c>); only local folders and the cache are used.</summary>
    public bool Offline { get; init; }

    /// <summary>Limit for connecting and for receiving response headers.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest silence while a body is streaming before the read is abandoned and resumed.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Resume attempts after a broken transfer that made no progress (progress resets the count).</summary>
    public int MaxResumeAttempts { get; init; } = 5;

    /// <summary>Pause before resuming a broken transfer.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long to wait for another process downloading the same file.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromHours(2);

    /// <summary>
    /// Options from environment variables, as huggingface_hub reads them: <c>HF_ENDPOINT</c>; <c>HF_HUB_CACHE</c>, else
    /// <c>HUGGINGFACE_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>, else <c>$XDG_CACHE_HOME/huggingface/hub</c>, else
    /// <c>~/.cache/huggingface/hub</c>; <c>HF_TOKEN</c> (or <c>HUGGING_FACE_HUB_TOKEN</c>), else the token file
    /// <c>HF_TOKEN_PATH</c> / <c>$HF_HOME/token</c>; <c>HF_HUB_OFFLINE</c> (or <c>TRANSFORMERS_OFFLINE</c>) = 1/true/yes/on.
    /// </summary>
    /// <param name="getEnv">variable lookup; defaults to the process environment</param>
    public static HubOptions FromEnvironment(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        string home = HfHome(getEnv);
        string tokenPath = Expand(NonEmpty(getEnv("HF_TOKEN_PATH")) ?? Path.Combine(home, "token"));
        string? token = Clean(getEnv("HF_TOKEN")) ?? Clean(getEnv("HUGGING_FACE_HUB_TOKEN")) ?? ReadTokenFile(tokenPath);
        return new HubOptions
        {
            Endpoint = (NonEmpty(getEnv("HF_ENDPOINT")) ?? DefaultEndpoint).TrimEnd('/'),
            CacheDir = DefaultCacheDir(getEnv),
            Token = token,
            TokenPath = tokenPath,
            Offline = IsTrue(getEnv("HF_HUB_OFFLINE")) || IsTrue(getEnv("TRANSFORMERS_OFFLINE")),
        };
    }

    static string DefaultCacheDir(Func<string, string?> getEnv) =>
        Expand(NonEmpty(getEnv("HF_HUB_CACHE")) ?? NonEmpty(getEnv("HUGGINGFACE_HUB_CACHE")) ?? Path.Combine(HfHome(getEnv), "hub"));

    static string HfHome(Func<string, string?> getEnv)
    {
        string cacheHome = NonEmpty(getEnv("XDG_CACHE_HOME")) ?? Path.Combine(UserHome(), ".cache");
        return Expand(NonEmpty(getEnv("HF_HOME")) ?? Path.Combine(cacheHome, "huggingface"));
    }

    static string? ReadTokenFile(string path)
    {
        try { return File.Exists(path) ? Clean(File.ReadAllText(path)) : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    static bool IsTrue(string? v) => v != null && v.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";
    static string? NonEmpty(string? v) => string.IsNullOrWhiteSpace(v) ? null : v;
    static string? Clean(string? v) => string.IsNullOrWhiteSpace(v) ? null : v.Trim();
    static string UserHome() => Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    static string Expand(string path) =>
        path == "~" ? UserHome() : path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(UserHome(), path[2..]) : path;
}
