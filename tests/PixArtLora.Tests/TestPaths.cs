namespace PixArtLora.Tests;

/// <summary>Locates the repository's test fixtures and gives each test a private scratch folder.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Fixture(params string[] parts) => Path.Combine(new[] { RepoRoot, "tests", "fixtures" }.Concat(parts).ToArray());

    /// <summary>A new empty folder under the system temp folder, unique to the caller.</summary>
    public static string NewTempDir(string label = "test")
    {
        var dir = Path.Combine(Path.GetTempPath(), "pixartlora-tests", $"{label}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "PixArtLora.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException($"PixArtLora.sln not found above {AppContext.BaseDirectory}");
    }
}
