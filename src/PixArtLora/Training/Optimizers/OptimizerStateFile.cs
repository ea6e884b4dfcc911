using System.Text.Json;
using System.Text.Json.Nodes;
using PixArtLora.IO;
using static TorchSharp.torch;

namespace PixArtLora.Training.Optimizers;

/// <summary>
/// Saves and loads an optimizer's state as two files in a folder: <c>optimizer.safetensors</c> (every state
/// tensor, bit-exact) and <c>optimizer.json</c> (kind, hyperparameters, per-parameter step counts).
/// </summary>
public static class OptimizerStateFile
{
    public const string TensorsFileName = "optimizer.safetensors";
    public const string ScalarsFileName = "optimizer.json";

    /// <summary>Writes the state of <paramref name="optimizer"/> into <paramref name="folder"/> (each file atomically).</summary>
    public static void Save(string folder, ITrainingOptimizer optimizer)
    {
        var state = optimizer.ExportState();
        Directory.CreateDirectory(folder);
        SafetensorsWriter.Save(Path.Combine(folder, TensorsFileName), state.Tensors,
            new Dictionary<string, string> { ["optimizer"] = state.Kind });
        var steps = new JsonObject();
        foreach (var (name, step) in state.Steps.OrderBy(kv => kv.Key, StringComparer.Ordinal)) steps[name] = step;
        var json = new JsonObject
        {
            ["kind"] = state.Kind,
            ["hyperparameters"] = state.Hyperparameters.DeepClone(),
            ["steps"] = steps,
        };
        AtomicFile.WriteAllText(Path.Combine(folder, ScalarsFileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Loads the state saved by <see cref="Save"/> into <paramref name="optimizer"/>, in place.</summary>
    public static void Load(string folder, ITrainingOptimizer optimizer)
    {
        string jsonPath = Path.Combine(folder, ScalarsFileName);
        string tensorsPath = Path.Combine(folder, TensorsFileName);
        foreach (var f in new[] { jsonPath, tensorsPath })
            if (!File.Exists(f)) throw new FileNotFoundException($"optimizer state file {f} is missing", f);

        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(jsonPath))?.AsObject() ?? throw new InvalidDataException("empty"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException)
        { throw new InvalidDataException($"{jsonPath}: not a valid optimizer state JSON ({e.Message})", e); }

        string kind = json["kind"]?.GetValue<string>() ?? throw new InvalidDataException($"{jsonPath}: field 'kind' is missing");
        var stepsNode = json["steps"] as JsonObject ?? throw new InvalidDataException($"{jsonPath}: field 'steps' is missing");
        var steps = stepsNode.ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<long>()
            ?? throw new InvalidDataException($"{jsonPath}: steps.{kv.Key} is null"));

        using var scope = NewDisposeScope();
        using var file = SafetensorsFile.Open(tensorsPath);
        var tensors = file.Entries.Keys.ToDictionary(k => k, k => file.Read(k));
        var snapshot = new OptimizerStateSnapshot
        {
            Kind = kind,
            Hyperparameters = json["hyperparameters"] as JsonObject ?? new JsonObject(),
            Steps = steps,
            Tensors = tensors,
        };
        try { optimizer.ImportState(snapshot); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{folder}: {e.Message}", e); }
    }
}
