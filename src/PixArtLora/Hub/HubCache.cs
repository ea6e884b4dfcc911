using System.Text.RegularExpressions;
using PixArtLora.IO;

namespace PixArtLora.Hub;

/// <summary>
/// The Hugging Face cache layout, shared with Python's huggingface_hub:
/// <code>
/// {root}/models--org--name/blobs/{etag}                  file contents, named by sha256 (LFS) or git blob id
///                          snapshots/{commit}/{path}     relative symlinks into ../blobs
///                          refs/{revision}                the commit a branch or tag pointed to
/// {root}/.locks/models--org--name/{etag}.lock            held while a blob is being downloaded
/// </code>
/// </summary>
public sealed class HubCache
{
    static readonly Regex SafeName = new(@"^[A-Za-z0-9][A-Za-z0-9._\-]*$", RegexOptions.Compiled);

    /// <summary>The cache folder (<see cref="HubOptions.CacheDir"/>).</summary>
    public string Root { get; }

    public HubCache(string root) { Root = Path.GetFullPath(root); }

    public string RepoFolder(HubRepo repo) => Path.Combine(Root, repo.CacheFolderName);

    public string SnapshotFolder(HubRepo repo, string commit) => Path.Combine(RepoFolder(repo), "snapshots", CheckName(commit, "commit"));

    public string BlobPath(HubRepo repo, string etag) => Path.Combine(RepoFolder(repo), "blobs", CheckName(etag, "ETag"));

    public string LockPath(HubRepo repo, string etag) => Path.Combine(Root, ".locks", repo.CacheFolderName, CheckName(etag, "ETag") + ".lock");

    /// <summary>The local path of a repo file inside a snapshot (<paramref name="path"/> already checked by <see cref="CheckRepoPath"/>).</summary>
    public string PointerPath(HubRepo repo, string commit, string path) =>
        Path.Combine(new[] { SnapshotFolder(repo, commit) }.Concat(path.Split('/')).ToArray());

    /// <summary>The commit <paramref name="revision"/> resolves to offline: itself when it is a cached commit, else <c>refs/{revision}</c>.</summary>
    public string? FindCommit(HubRepo repo, string revision)
    {
        if (HubRepo.IsCommitHash(revision) && Directory.Exists(SnapshotFolder(repo, revision))) return revision;
        string refPath = RefPath(repo, revision);
        if (!File.Exists(refPath)) return null;
        string commit = File.ReadAllText(refPath).Trim();
        return SafeName.IsMatch(commit) ? commit : null;
    }

    /// <summary>Records that <paramref name="revision"/> (a branch or tag) pointed at <paramref name="commit"/>.</summary>
    public void WriteRef(HubRepo repo, string revision, string commit)
    {
        if (revision == commit) return;
        string refPath = RefPath(repo, revision);
        if (File.Exists(refPath) && File.ReadAllText(refPath).Trim() == commit) return;
        AtomicFile.WriteAllText(refPath, commit);
    }

    /// <summary>Files present in a snapshot (dangling links skipped), repo-relative with '/' separators.</summary>
    public List<string> SnapshotFiles(HubRepo repo, string commit)
    {
        string folder = SnapshotFolder(repo, commit);
        if (!Directory.Exists(folder)) return new List<string>();
        return Directory.EnumerateFiles(folder, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Where(IsPresent)
            .Select(f => Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/'))
            .OrderBy(f => f, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>True when <paramref name="path"/> is a file, or a link whose final target is a file (a dangling link is not).</summary>
    public static bool IsPresent(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget == null) return info.Exists;
        return info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true };
    }

    /// <summary>
    /// Points <paramref name="pointerPath"/> at <paramref name="blobPath"/> with a relative symlink (as huggingface_hub
    /// does, so the cache folder can be moved), created beside the target and renamed over it. Where symlinks are not
    /// allowed (Windows without developer mode) the blob is copied instead.
    /// </summary>
    public static void Link(string blobPath, string pointerPath)
    {
        string dir = Path.GetDirectoryName(pointerPath)!;
        Directory.CreateDirectory(dir);
        string relative = Path.GetRelativePath(dir, blobPath);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(pointerPath)}.{Guid.NewGuid():N}.link");
        try
        {
            File.CreateSymbolicLink(tmp, relative);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            File.Copy(blobPath, tmp);
        }
        File.Move(tmp, pointerPath, overwrite: true);
    }

    /// <summary>
    /// Takes the exclusive lock on <paramref name="lockPath"/>, waiting while another process holds it. The lock is
    /// an OS file lock (flock on Unix, as Python's filelock uses), so it is released even if the holder dies.
    /// </summary>
    public static async Task<IDisposable> AcquireLockAsync(string lockPath, TimeSpan timeout, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), ct);
            }
            catch (IOException e)
            {
                throw new HubException($"timed out after {timeout} waiting for the lock {lockPath} (another process is downloading the same file)", e);
            }
        }
    }

    /// <summary>
    /// Rejects repo paths that could escape the snapshot folder (a listing comes from the network).
    /// </summary>
    public static string CheckRepoPath(string path, HubRepo repo)
    {
        var parts = path.Split('/');
        if (path.Length == 0 || path.StartsWith('/') || path.Contains('\\') || path.Contains('\0')
            || parts.Any(p => p.Length == 0 || p == "." || p == ".."))
            throw new HubException($"{repo}: the Hub listed the file '{path}', which is not a safe relative path");
        return path;
    }

    string RefPath(HubRepo repo, string revision)
    {
        // Branch names may contain '/', e.g. refs/convert/parquet; huggingface_hub nests them as folders.
        var parts = revision.Split('/');
        if (parts.Any(p => p.Length == 0 || p == "." || p == ".." || p.Contains('\\')))
            throw new HubException($"{repo}: revision '{revision}' is not a valid branch, tag or commit name");
        return Path.Combine(new[] { RepoFolder(repo), "refs" }.Concat(parts).ToArray());
    }

    static string CheckName(string name, string what) =>
        SafeName.IsMatch(name) ? name : throw new HubException($"{what} '{name}' is not a safe file name");
}
