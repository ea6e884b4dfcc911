using System.Text.Json;
using PixArtLora.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Parity;

/// <summary>
/// One golden case folder: case.json (kind, tolerance, config, tensors) plus io.safetensors with the
/// reference's inputs, expected outputs and debug intermediates. See tests/fixtures/README.md.
/// </summary>
public sealed class ParityCase : IDisposable
{
    SafetensorsFile? _io;

    public string Directory { get; }
    public string Name => Path.GetFileName(Directory);
    public JsonElement Json { get; }
    public string Kind => Json.GetProperty("kind").GetString()!;
    public double Atol { get; }
    public double Rtol { get; }

    public ParityCase(string directory)
    {
        Directory = directory;
        string jsonPath = Path.Combine(directory, "case.json");
        using var doc = JsonDocument.Parse(PythonJson.QuoteFloatLiterals(File.ReadAllText(jsonPath)));
        Json = doc.RootElement.Clone();
        if (Json.TryGetProperty("tolerance", out var tol) && tol.ValueKind == JsonValueKind.Object)
        {
            Atol = tol.TryGetProperty("atol", out var a) ? a.GetDouble() : 0;
            Rtol = tol.TryGetProperty("rtol", out var r) ? r.GetDouble() : 0;
        }
    }

    /// <summary>Path of a file or folder inside the case.</summary>
    public string PathOf(string relative) => Path.Combine(Directory, relative);

    public SafetensorsFile Io => _io ??= SafetensorsFile.Open(PathOf("io.safetensors"));

    public bool Has(string tensorName) => File.Exists(PathOf("io.safetensors")) && Io.Entries.ContainsKey(tensorName);

    /// <summary>A tensor from io.safetensors, as stored.</summary>
    public Tensor Tensor(string name) => Io.Read(name);

    /// <summary>Asserts that <paramref name="actual"/> matches io.safetensors' <paramref name="expectedName"/>
    /// within the case's tolerance (or the given override).</summary>
    public void AssertClose(string expectedName, Tensor actual, double? atol = null, double? rtol = null)
    {
        using var expected = Tensor(expectedName);
        TensorAssert.AllClose(actual, expected, atol ?? Atol, rtol ?? Rtol, $"{Name}:{expectedName}");
    }

    public void Dispose() => _io?.Dispose();
}
