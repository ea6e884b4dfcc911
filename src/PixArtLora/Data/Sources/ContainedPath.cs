namespace PixArtLora.Data.Sources;

/// <summary>
/// Resolves paths from label files inside a root folder and refuses any that would leave it (absolute paths,
/// "..", or a symbolic link, to a file or to a folder on the way, pointing outside), so a label file cannot make
/// training read arbitrary files.
/// </summary>
public static class ContainedPath
{
    /// <summary>The full path of <paramref name="relative"/> under <paramref name="root"/>, or an <see cref="InvalidDataException"/> naming <paramref name="where"/>.</summary>
    public static string Resolve(string root, string relative, string where)
    {
        if (string.IsNullOrWhiteSpace(relative))
            throw new InvalidDataException($"{where}: empty image path");
        string rootFull = Path.GetFullPath(root);
        // Label files written on Windows use backslashes; treat them as separators, never as file-name characters.
        string normalized = relative.Replace('\\', '/');
        if (Path.IsPathRooted(normalized) || (normalized.Length >= 2 && normalized[1] == ':'))
            throw new InvalidDataException($"{where}: image path '{relative}' is absolute; paths must be relative to the image folder {rootFull}");
        string full = Path.GetFullPath(Path.Combine(rootFull, normalized));
        if (!IsInside(rootFull, full))
            throw new InvalidDataException($"{where}: image path '{relative}' escapes the image folder {rootFull}");
        string real = RealPath(full);
        if (!IsInside(RealPath(rootFull), real))
            throw new InvalidDataException($"{where}: image path '{relative}' leads through a link to {real}, outside the image folder {rootFull}");
        return full;
    }

    static bool IsInside(string root, string full)
    {
        string prefix = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        return full.StartsWith(prefix, StringComparison.Ordinal);
    }

    /// <summary>The path with every symbolic link along it (that exists) replaced by its final target.</summary>
    static string RealPath(string full)
    {
        string current = Path.GetPathRoot(full) ?? "/";
        foreach (var part in full[current.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            if (info.Exists && info.LinkTarget != null)
                next = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? next;
            current = next;
        }
        return current;
    }
}
