namespace PixArtLora.Hub;

/// <summary>Where a resolved model or dataset came from.</summary>
public enum HubSnapshotOrigin
{
    /// <summary>The id was a local folder, used as it is.</summary>
    LocalFolder,
    /// <summary>Everything was already in the Hugging Face cache.</summary>
    Cache,
    /// <summary>At least one file was downloaded into the cache.</summary>
    Downloaded,
}

/// <summary>
/// A model or dataset available on disk: a folder (a local folder, or <c>snapshots/&lt;commit&gt;</c> in the
/// cache) and the repo-relative paths of the requested files in it.
/// </summary>
/// <param name="Repo">the repository; null for a local folder</param>
/// <param name="Folder">the folder to read files from</param>
/// <param name="Commit">the commit the files belong to; null for a local folder</param>
/// <param name="Files">requested files, repo-relative with '/' separators</param>
/// <param name="Origin">local folder, cache, or download</param>
public sealed record HubSnapshot(HubRepo? Repo, string Folder, string? Commit, IReadOnlyList<string> Files, HubSnapshotOrigin Origin)
{
    /// <summary>The local path of a repo-relative file or folder.</summary>
    public string PathOf(string relative) => Path.Combine(new[] { Folder }.Concat(relative.Split('/', StringSplitOptions.RemoveEmptyEntries)).ToArray());
}
