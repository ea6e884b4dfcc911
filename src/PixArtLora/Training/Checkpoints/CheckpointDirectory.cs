using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace PixArtLora.Training.Checkpoints;

/// <summary>The <c>checkpoint-&lt;step&gt;</c> folders of a run's output folder: naming, listing, latest, pruning.</summary>
public static partial class CheckpointDirectory
{
    public const string Prefix = "checkpoint-";

    [GeneratedRegex(@"^checkpoint-(\d+)$")]
    private static partial Regex FolderPattern();

    // AtomicFile's temp and backup names: ".<name>.<pid>.<guid>.tmp" and ".<name>.<guid>.old".
    [GeneratedRegex(@"^\.checkpoint-\d+\.(?:(\d+)\.)?[0-9a-f]{32}\.(tmp|old)$")]
    private static partial Regex TemporaryPattern();

    /// <summary>The folder name of the checkpoint after <paramref name="step"/> updates.</summary>
    public static string FolderName(long step) => Prefix + step.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The complete checkpoints under <paramref name="outputDir"/>, oldest step first. A folder counts when its
    /// name is <c>checkpoint-&lt;digits&gt;</c> and it holds a manifest; hidden temp folders never match.
    /// </summary>
    public static IReadOnlyList<(long Step, string Path)> List(string outputDir)
    {
        if (!Directory.Exists(outputDir)) return Array.Empty<(long, string)>();
        var found = new List<(long, string)>();
        foreach (var dir in Directory.EnumerateDirectories(outputDir))
        {
            var m = FolderPattern().Match(Path.GetFileName(dir));
            if (!m.Success || !long.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out long step)) continue;
            if (!File.Exists(Path.Combine(dir, TrainingCheckpoint.ManifestFileName))) continue;
            found.Add((step, Path.GetFullPath(dir)));
        }
        found.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return found;
    }

    /// <summary>The complete checkpoint with the highest step, or null when there is none.</summary>
    public static string? FindLatest(string outputDir)
    {
        var all = List(outputDir);
        return all.Count == 0 ? null : all[^1].Path;
    }

    /// <summary>
    /// Turns a <c>--resume_from_checkpoint</c> value into a checkpoint folder: <c>latest</c> (the newest under
    /// <paramref name="outputDir"/>, or null when the run has none yet, which starts a fresh run as diffusers
    /// does), a folder name under <paramref name="outputDir"/>, or a path.
    /// </summary>
    public static string? Resolve(string outputDir, string value)
    {
        if (string.Equals(value, "latest", StringComparison.OrdinalIgnoreCase)) return FindLatest(outputDir);
        foreach (var candidate in new[] { value, Path.Combine(outputDir, value) })
            if (Directory.Exists(candidate))
            {
                if (!File.Exists(Path.Combine(candidate, TrainingCheckpoint.ManifestFileName)))
                    throw new InvalidDataException($"{candidate} is not a complete training checkpoint ({TrainingCheckpoint.ManifestFileName} is missing)");
                return Path.GetFullPath(candidate);
            }
        var existing = List(outputDir);
        throw new DirectoryNotFoundException($"checkpoint '{value}' not found (looked for it as a path and under {outputDir}); " +
            (existing.Count == 0 ? "that folder has no checkpoints" : $"available: latest, {string.Join(", ", existing.Select(e => Path.GetFileName(e.Path)))}"));
    }

    /// <summary>
    /// Deletes the oldest checkpoints until at most <paramref name="limit"/> remain, never deleting
    /// <paramref name="keep"/> (the one just written). Returns the deleted folders.
    /// </summary>
    public static IReadOnlyList<string> Prune(string outputDir, int limit, string? keep = null)
    {
        if (limit < 1) throw new ArgumentException($"checkpoints_total_limit must be >= 1, got {limit}");
        string? keepFull = keep == null ? null : Path.GetFullPath(keep).TrimEnd(Path.DirectorySeparatorChar);
        var all = List(outputDir).ToList();
        var deleted = new List<string>();
        foreach (var (_, path) in all)
        {
            if (all.Count - deleted.Count <= limit) break;
            if (path == keepFull) continue;
            Directory.Delete(path, recursive: true);
            deleted.Add(path);
        }
        return deleted;
    }

    /// <summary>Deletes temp folders that a killed process left behind (never those of a process still running).</summary>
    public static void DeleteStaleTemporaryFolders(string outputDir)
    {
        if (!Directory.Exists(outputDir)) return;
        foreach (var dir in Directory.EnumerateDirectories(outputDir))
        {
            var m = TemporaryPattern().Match(Path.GetFileName(dir));
            if (!m.Success) continue;
            if (m.Groups[1].Success && int.TryParse(m.Groups[1].Value, out int pid) && IsAlive(pid)) continue;
            if (m.Groups[2].Value == "old" ) continue; // a replaced checkpoint mid-swap: AtomicFile deletes it itself
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    static bool IsAlive(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try { using var p = Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }
}
