using System.Text.RegularExpressions;

namespace PixArtLora.Hub;

/// <summary>The kinds of Hub repository this toolkit reads.</summary>
public enum HubRepoType
{
    Model,
    Dataset,
}

/// <summary>
/// A repository on the Hub: its id (<c>org/name</c>), type and the names it has in URLs and in the cache
/// (<c>models--org--name</c>), as huggingface_hub spells them.
/// </summary>
public sealed record HubRepo(string Id, HubRepoType Type)
{
    // huggingface_hub's validate_repo_id: [namespace/]name of letters, digits, '-', '_', '.', no '--' or '..'.
    static readonly Regex IdPattern = new(@"^(?:[A-Za-z0-9][\w.\-]{0,95}/)?[A-Za-z0-9][\w.\-]{0,95}$", RegexOptions.Compiled);
    static readonly Regex CommitPattern = new("^[0-9a-f]{40}$", RegexOptions.Compiled);

    /// <summary>True when <paramref name="id"/> has the form of a Hub id.</summary>
    public static bool IsValidId(string id) =>
        IdPattern.IsMatch(id) && !id.Contains("--") && !id.Contains("..") && !id.EndsWith(".git", StringComparison.Ordinal);

    /// <summary>True for a full 40-hex commit hash (a revision that can never move).</summary>
    public static bool IsCommitHash(string revision) => CommitPattern.IsMatch(revision);

    /// <summary>The cache folder name, e.g. <c>models--PixArt-alpha--PixArt-Sigma-XL-2-1024-MS</c>.</summary>
    public string CacheFolderName => (Type == HubRepoType.Dataset ? "datasets" : "models") + "--" + Id.Replace("/", "--");

    /// <summary>The human page of the repository (where gated terms are accepted).</summary>
    public string PageUrl(string endpoint) => $"{endpoint}/{UrlPrefix}{Id}";

    /// <summary><c>/api/models/{id}/revision/{rev}</c> (or <c>/api/datasets/...</c>) with per-file sizes and hashes.</summary>
    public Uri RevisionApiUrl(string endpoint, string revision) =>
        new($"{endpoint}/api/{(Type == HubRepoType.Dataset ? "datasets" : "models")}/{Id}/revision/{Uri.EscapeDataString(revision)}?blobs=true");

    /// <summary><c>/{id}/resolve/{rev}/{path}</c>, the download URL of one file.</summary>
    public Uri ResolveUrl(string endpoint, string revision, string path) =>
        new($"{endpoint}/{UrlPrefix}{Id}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}");

    string UrlPrefix => Type == HubRepoType.Dataset ? "datasets/" : "";

    public override string ToString() => Type == HubRepoType.Dataset ? $"dataset {Id}" : Id;
}
