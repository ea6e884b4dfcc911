namespace PixArtLora.Data.Sources;

/// <summary>
/// Resolves paths from label files inside a root folder and refuses any that would leave it (absolute paths,
/// "..", or a symbolic link pointing outside), so a label file cannot make training read arbitrary files.
/// </summary>
public static class ContainedPath
{
    /// <summary>The full path of <paramref name="relative"/> under <paramref name="root"/>, or an <see cref="InvalidDataException"/> naming <paramref name="where"/>.</summary>
    public static string Resolve(string root, string relative, string where)
    {
        if (string.IsNullOrWhiteSpace(relative))
            throw new InvalidDataException($"{where}: empty image path");
        string rootFull = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        // Label files written on Windows use backslashes; treat them as separators, never as file-name characters.
        string normalized = relative.Replace('\\', '/');
        if (Path.IsPathRooted(normalized) || normalized.StartsWith('/') || (normalized.Length >= 2 && normalized[1] == ':'))
            throw new InvalidDataException($"{where}: image path '{relative}' is absolute; paths must be relative to the image folder {rootFull}");
        string full = Path.GetFullPath(Path.Combine(rootFull, normalized));
        if (!IsInside(rootFull, full))
            throw new InvalidDataException($"{where}: image path '{relative}' escapes the image folder {rootFull}");
        if (File.Exists(full) && new FileInfo(full).LinkTarget != null)
        {
            var target = File.ResolveLinkTarget(full, returnFinalTarget: true);
            if (target != null && !IsInside(ResolveRealDirectory(rootFull), target.FullName) && !IsInside(rootFull, target.FullName))
                throw new InvalidDataException($"{where}: image path '{relative}' is a link to {target.FullName}, outside the image folder {rootFull}");
        }
        return full;
    }

    static bool IsInside(string root, string full) =>
        full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    static string ResolveRealDirectory(string dir)
    {
        var info = new DirectoryInfo(dir);
        return info.LinkTarget != null ? info.ResolveLinkTarget(true)?.FullName ?? dir : dir;
    }
}
