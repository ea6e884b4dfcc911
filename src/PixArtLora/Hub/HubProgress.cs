namespace PixArtLora.Hub;

/// <summary>Stages of one file's arrival.</summary>
public enum HubFileStage
{
    /// <summary>Already in the cache; nothing transferred.</summary>
    Cached,
    /// <summary>The transfer began (BytesDone &gt; 0 when resuming a partial download).</summary>
    Started,
    /// <summary>Bytes arrived.</summary>
    Downloading,
    /// <summary>The connection broke; resuming from BytesDone.</summary>
    Resuming,
    /// <summary>All bytes arrived and the size and hash were verified.</summary>
    Completed,
}

/// <summary>Progress of one file, for progress bars (the consumer derives speed from BytesDone over time).</summary>
/// <param name="Repo">the repository</param>
/// <param name="File">repo-relative path</param>
/// <param name="BytesDone">bytes on disk so far</param>
/// <param name="TotalBytes">the file's size, when known</param>
/// <param name="Stage">what just happened</param>
public sealed record HubFileProgress(HubRepo Repo, string File, long BytesDone, long? TotalBytes, HubFileStage Stage);
