namespace PixArtLora.IO;

/// <summary>
/// Writes files and folders so that a crash never leaves a half-written result under the final name:
/// write next to the target, flush to disk, then rename over it.
/// </summary>
public static class AtomicFile
{
    /// <summary>Creates <paramref name="path"/> by letting <paramref name="write"/> fill a temp file in the same folder.</summary>
    public static void Write(string path, Action<FileStream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, fs => { var b = System.Text.Encoding.UTF8.GetBytes(text); fs.Write(b, 0, b.Length); });

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, fs => fs.Write(copy, 0, copy.Length));
    }

    /// <summary>
    /// Creates the folder <paramref name="path"/> by filling a temp sibling folder and renaming it.
    /// An existing folder at <paramref name="path"/> is replaced only after the new one is complete.
    /// </summary>
    public static void WriteDirectory(string path, Action<string> fill)
    {
        string full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(tmp);
        try
        {
            fill(tmp);
            string? old = null;
            if (Directory.Exists(full))
            {
                old = Path.Combine(parent, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.old");
                Directory.Move(full, old);
            }
            Directory.Move(tmp, full);
            if (old != null) Directory.Delete(old, recursive: true);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            throw;
        }
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
