using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using PixArtLora.IO;

namespace PixArtLora.Server;

/// <summary>
/// One generated image as kept on disk: <c>&lt;id&gt;.png</c> (the backend's file, unchanged) beside
/// <c>&lt;id&gt;.json</c>, this record. <see cref="Parameters"/> is the PNG's <c>parameters</c> text.
/// </summary>
public sealed record StoredResult(
    string Id,
    string JobId,
    int Index,
    DateTimeOffset CreatedAt,
    string Model,
    string Prompt,
    string NegativePrompt,
    string Sampler,
    int Steps,
    double GuidanceScale,
    long Seed,
    int Width,
    int Height,
    IReadOnlyList<AppliedLora> Loras,
    string Parameters);

/// <summary>
/// Keeps results in one folder so that they outlive the server: the gallery is rebuilt from the sidecars after a
/// restart. Ids start with the UTC time, so the folder lists in the order images were made.
/// </summary>
public sealed class ResultStore
{
    // yyyyMMdd-HHmmss-fff, the job id (12 hex digits), the image index. Nothing else is ever accepted as an id,
    // which keeps requests for /api/results/{id}.png inside the folder.
    static readonly Regex IdPattern = new(@"^\d{8}-\d{6}-\d{3}-[0-9a-f]{12}-\d{1,3}$", RegexOptions.Compiled | RegexOptions.CultureInvariant);

    readonly ILogger _logger;

    public string Directory { get; }

    public ResultStore(string directory, ILogger logger)
    {
        Directory = Path.GetFullPath(directory);
        _logger = logger;
        System.IO.Directory.CreateDirectory(Directory);
    }

    public static bool IsValidId(string id) => IdPattern.IsMatch(id);

    /// <summary>Writes each image and then its sidecar (both atomically), so a listed sidecar always has its PNG.</summary>
    public IReadOnlyList<StoredResult> Save(string jobId, string model, GenerationRequest request, IReadOnlyList<GeneratedImage> images, DateTimeOffset finishedAt)
    {
        var stored = new List<StoredResult>(images.Count);
        string stamp = finishedAt.UtcDateTime.ToString("yyyyMMdd-HHmmss-fff", CultureInfo.InvariantCulture);
        for (int i = 0; i < images.Count; i++)
        {
            var image = images[i];
            var result = new StoredResult($"{stamp}-{jobId}-{i}", jobId, i, finishedAt, model, request.Prompt, request.NegativePrompt,
                request.Sampler, request.Steps, request.GuidanceScale, image.Seed, image.Width, image.Height, request.Loras, image.Parameters);
            AtomicFile.WriteAllBytes(PngPath(result.Id), image.Png);
            AtomicFile.WriteAllText(SidecarPath(result.Id), JsonSerializer.Serialize(result, ServerJson.Indented));
            stored.Add(result);
        }
        return stored;
    }

    /// <summary>The newest <paramref name="limit"/> results, newest job first, a job's images in order.</summary>
    public IReadOnlyList<StoredResult> Recent(int limit)
    {
        // Ids are "<stamp>-<job>-<index>": newest stamp first, then image 0, 1, … of that job.
        var ids = System.IO.Directory.EnumerateFiles(Directory, "*.json")
            .Select(Path.GetFileNameWithoutExtension)
            .Where(n => n != null && IsValidId(n))
            .Select(n => (Id: n!, Job: n![..n!.LastIndexOf('-')], Index: int.Parse(n![(n!.LastIndexOf('-') + 1)..], CultureInfo.InvariantCulture)))
            .OrderByDescending(n => n.Job, StringComparer.Ordinal)
            .ThenBy(n => n.Index);
        var results = new List<StoredResult>();
        foreach (var (id, _, _) in ids)
        {
            if (results.Count == limit) break;
            var result = TryRead(id);
            if (result != null && File.Exists(PngPath(id))) results.Add(result);
        }
        return results;
    }

    /// <summary>The PNG of result <paramref name="id"/>, or null when the id is malformed or unknown.</summary>
    public string? FindPng(string id)
    {
        if (!IsValidId(id)) return null;
        string path = PngPath(id);
        return File.Exists(path) ? path : null;
    }

    StoredResult? TryRead(string id)
    {
        string path = SidecarPath(id);
        try
        {
            var result = JsonSerializer.Deserialize<StoredResult>(File.ReadAllText(path), ServerJson.Options);
            if (result?.Id == id) return result;
            _logger.LogWarning("{Path}: sidecar names id '{Found}', expected '{Id}'; skipped", path, result?.Id, id);
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException)
        {
            _logger.LogWarning("{Path}: unreadable result sidecar ({Message}); skipped", path, e.Message);
        }
        return null;
    }

    string PngPath(string id) => Path.Combine(Directory, id + ".png");
    string SidecarPath(string id) => Path.Combine(Directory, id + ".json");
}
