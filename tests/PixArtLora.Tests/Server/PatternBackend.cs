using System.Collections.Concurrent;
using System.Globalization;
using PixArtLora.Registry;
using PixArtLora.Server;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace PixArtLora.Tests.Server;

/// <summary>
/// A stand-in generator for the server tests (not a model): it draws a colour pattern chosen by the seed, "steps"
/// with a small delay while reporting progress, and honours cancellation between steps, like the pipeline will.
/// It records every request it receives and checks that the server never runs two at once.
/// </summary>
internal sealed class PatternBackend : IGenerationBackend
{
    int _active;
    int _maxActive;

    public ModelInfo Info { get; }
    /// <summary>Pause per step; long pauses keep a job running while a test inspects the queue.</summary>
    public TimeSpan StepDelay { get; set; } = TimeSpan.FromMilliseconds(5);
    /// <summary>When set, a request whose prompt contains this text fails with it after its first step.</summary>
    public string? FailOnPrompt { get; set; }
    public ConcurrentQueue<GenerationRequest> Requests { get; } = new();
    public int MaxConcurrentCalls => Volatile.Read(ref _maxActive);

    public PatternBackend(AspectRatioTable? sizes = null, params LoraInfo[] loras)
    {
        Info = new ModelInfo("test-pattern",
            new[] { new SamplerInfo("dpm", 12, 4.5), new SamplerInfo("ddim", 20, 4.5), new SamplerInfo("euler", 16, 3.0) },
            sizes ?? AspectRatioBins.Diffusers256, loras);
    }

    public async Task<IReadOnlyList<GeneratedImage>> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress> progress, CancellationToken cancellationToken)
    {
        Requests.Enqueue(request);
        int active = Interlocked.Increment(ref _active);
        InterlockedMax(ref _maxActive, active);
        try
        {
            progress.Report(new GenerationProgress(0, request.Steps, "encoding prompt"));
            for (int step = 1; step <= request.Steps; step++)
            {
                await Task.Delay(StepDelay, cancellationToken);
                progress.Report(new GenerationProgress(step, request.Steps));
                if (FailOnPrompt != null && request.Prompt.Contains(FailOnPrompt, StringComparison.Ordinal))
                    throw new InvalidDataException($"test failure requested by prompt '{request.Prompt}'");
            }
            progress.Report(new GenerationProgress(request.Steps, request.Steps, "decoding"));
            return Enumerable.Range(0, request.ImageCount).Select(i => Render(request, request.Seed + i)).ToList();
        }
        finally
        {
            Interlocked.Decrement(ref _active);
        }
    }

    static GeneratedImage Render(GenerationRequest request, long seed)
    {
        var random = new Random(unchecked((int)(seed ^ (seed >> 32))));
        var (r1, g1, b1) = (random.Next(40, 256), random.Next(40, 256), random.Next(40, 256));
        var (r2, g2, b2) = (random.Next(0, 200), random.Next(0, 200), random.Next(0, 200));
        double cx = random.NextDouble() * request.Width, cy = random.NextDouble() * request.Height;
        double frequency = 0.05 + random.NextDouble() * 0.15;

        using var image = new Image<Rgb24>(request.Width, request.Height);
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                var row = rows.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    double t = (x / (double)request.Width + y / (double)request.Height) / 2;
                    double ring = 0.78 + 0.22 * Math.Sin(Math.Sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) * frequency);
                    row[x] = new Rgb24(Mix(r1, r2, t, ring), Mix(g1, g2, t, ring), Mix(b1, b2, t, ring));
                }
            }
        });
        using var png = new MemoryStream();
        image.SaveAsPng(png);

        var inv = CultureInfo.InvariantCulture;
        string parameters = request.Prompt
            + (request.NegativePrompt.Length > 0 ? $"\nNegative prompt: {request.NegativePrompt}" : "")
            + $"\nSteps: {request.Steps}, Sampler: {request.Sampler}, CFG scale: {request.GuidanceScale.ToString(inv)}, Seed: {seed}, "
            + $"Size: {request.Width}x{request.Height}, Model: test-pattern"
            + (request.Loras.Count > 0 ? $", Lora: \"{string.Join(", ", request.Loras.Select(l => $"{l.Name}:{l.Scale.ToString(inv)}"))}\"" : "");
        return new GeneratedImage(PngTextChunk.Insert(png.ToArray(), "parameters", parameters), request.Width, request.Height, seed, parameters);
    }

    static byte Mix(int a, int b, double t, double shade) => (byte)Math.Clamp((a + (b - a) * t) * shade, 0, 255);

    static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }
}
