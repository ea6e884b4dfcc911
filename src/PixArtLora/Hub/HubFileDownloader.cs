using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace PixArtLora.Hub;

/// <summary>A file in a Hub listing: its size and ETag (sha256 for LFS files, the git blob id otherwise).</summary>
internal sealed record HubRemoteFile(string Path, long? Size, string? Etag, bool IsLfs);

/// <summary>
/// Downloads one blob into the cache: appends to <c>blobs/{etag}.incomplete</c> (so a later run resumes where a
/// broken one stopped, with an HTTP Range request), retries broken transfers, checks the size and hash, then
/// renames the file to <c>blobs/{etag}</c>. The caller holds the blob's lock.
/// </summary>
internal static class HubFileDownloader
{
    const int BufferBytes = 1 << 20;
    // Progress is reported at most once per this many bytes (reads return a few KB at a time).
    const long ReportEveryBytes = 256 * 1024;

    public static async Task DownloadAsync(HubHttp http, HubOptions options, HubRepo repo, HubRemoteFile file, Uri url, string blobPath,
        IProgress<HubFileProgress>? progress, CancellationToken ct)
    {
        string incomplete = blobPath + ".incomplete";
        Directory.CreateDirectory(Path.GetDirectoryName(blobPath)!);
        long? size = file.Size;
        await using (var fs = new FileStream(incomplete, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, BufferBytes))
        {
            long have = fs.Length;
            if (size is long s0 && have > s0) { fs.SetLength(0); have = 0; }
            fs.Position = have;
            progress?.Report(new HubFileProgress(repo, file.Path, have, size, HubFileStage.Started));

            int failures = 0;
            long lastReport = have;
            var buffer = new byte[BufferBytes];
            while (size == null || have < size)
            {
                try
                {
                    bool finished = await TransferAsync();
                    if (finished) break;
                }
                catch (Exception e) when (IsBrokenTransfer(e, ct))
                {
                    if (++failures > options.MaxResumeAttempts)
                        throw new HubException($"{repo}: downloading {file.Path} failed {failures} times in a row at byte {have} of {size?.ToString() ?? "?"} " +
                                               $"({e.Message}); run again to resume from {incomplete}", e);
                    progress?.Report(new HubFileProgress(repo, file.Path, have, size, HubFileStage.Resuming));
                    await Task.Delay(options.RetryDelay, ct);
                }
            }
            await fs.FlushAsync(ct);
            fs.Flush(flushToDisk: true);
            if (size is long expected && fs.Length != expected)
                throw Corrupt($"{repo}: {file.Path} has {fs.Length} bytes after download, the Hub announced {expected}");
            fs.Position = 0;
            await VerifyHashAsync(fs, file, repo, ct);

            // One attempt: false means the body ended early (resume), true means the file is complete.
            async Task<bool> TransferAsync()
            {
                using var response = await http.SendAsync(HttpMethod.Get, url, repo, $"{repo}: {file.Path}", have, ct);
                if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
                {
                    if (size == null || have == size) return true;
                    Restart();
                    return false;
                }
                long start = response.StatusCode == HttpStatusCode.PartialContent ? response.Content.Headers.ContentRange?.From ?? -1 : 0;
                if (start != have)
                {
                    // The server ignored the Range (200) or answered another one: start over rather than splice.
                    Restart();
                    if (start != 0) return false;
                }
                size ??= response.Content.Headers.ContentRange?.Length ?? response.Content.Headers.ContentLength;
                await using var body = await response.Content.ReadAsStreamAsync(ct);
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
                while (true)
                {
                    idle.CancelAfter(options.ReadTimeout);
                    int n;
                    try { n = await body.ReadAsync(buffer, idle.Token); }
                    catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
                    {
                        throw new IOException($"no data for {options.ReadTimeout.TotalSeconds:0} s", e);
                    }
                    if (n == 0) break;
                    await fs.WriteAsync(buffer.AsMemory(0, n), ct);
                    have += n;
                    failures = 0;
                    if (size is long limit && have > limit)
                        throw Corrupt($"{repo}: the server sent more than the {limit} bytes announced for {file.Path}");
                    if (have - lastReport >= ReportEveryBytes || have == size)
                    {
                        lastReport = have;
                        progress?.Report(new HubFileProgress(repo, file.Path, have, size, HubFileStage.Downloading));
                    }
                }
                if (size == null) return true;
                if (have < size) throw new IOException($"the connection closed at byte {have} of {size}");
                return true;
            }

            void Restart()
            {
                fs.SetLength(0);
                fs.Position = 0;
                have = 0;
            }
        }
        File.Move(incomplete, blobPath, overwrite: true);
        progress?.Report(new HubFileProgress(repo, file.Path, size ?? new FileInfo(blobPath).Length, size, HubFileStage.Completed));

        HubIntegrityException Corrupt(string message)
        {
            TryDelete(incomplete);
            return new HubIntegrityException(message + "; the partial file was removed, run again");
        }
    }

    /// <summary>
    /// LFS files are named by the sha256 of their contents; other files by their git blob id,
    /// sha1("blob {size}\0" + contents). Any other ETag form is only size-checked.
    /// </summary>
    static async Task VerifyHashAsync(FileStream fs, HubRemoteFile file, HubRepo repo, CancellationToken ct)
    {
        string? etag = file.Etag?.ToLowerInvariant();
        if (etag == null || !etag.All(Uri.IsHexDigit)) return;
        string actual;
        if (etag.Length == 64)
            actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(fs, ct));
        else if (etag.Length == 40 && !file.IsLfs)
        {
            using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            sha1.AppendData(Encoding.ASCII.GetBytes($"blob {fs.Length}\0"));
            var buffer = new byte[BufferBytes];
            int n;
            while ((n = await fs.ReadAsync(buffer, ct)) > 0) sha1.AppendData(buffer, 0, n);
            actual = Convert.ToHexStringLower(sha1.GetHashAndReset());
        }
        else return;
        if (actual != etag)
        {
            string name = fs.Name;
            await fs.DisposeAsync();
            TryDelete(name);
            throw new HubIntegrityException($"{repo}: {file.Path} downloaded with {(etag.Length == 64 ? "sha256" : "git blob id")} {actual}, " +
                                            $"the Hub announced {etag}; the corrupt file was removed, run again");
        }
    }

    static bool IsBrokenTransfer(Exception e, CancellationToken ct) =>
        !ct.IsCancellationRequested && e is IOException or HttpRequestException or HubTransientException;

    static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
