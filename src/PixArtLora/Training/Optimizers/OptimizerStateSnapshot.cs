using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace PixArtLora.Training.Optimizers;

/// <summary>
/// Everything an optimizer needs to continue exactly where it stopped: its kind, the hyperparameters it ran
/// with (informational; a resumed run uses the ones it is configured with), each parameter's step count
/// and each parameter's state tensors keyed <c>{parameter}.{slot}</c>.
/// </summary>
public sealed class OptimizerStateSnapshot
{
    public required string Kind { get; init; }
    public required JsonObject Hyperparameters { get; init; }
    public required IReadOnlyDictionary<string, long> Steps { get; init; }
    public required IReadOnlyDictionary<string, Tensor> Tensors { get; init; }

    /// <summary>The key of one state tensor.</summary>
    public static string Key(string parameter, string slot) => $"{parameter}.{slot}";

    /// <summary>Throws unless this snapshot was written by an optimizer of kind <paramref name="expectedKind"/>.</summary>
    public void RequireKind(string expectedKind, string? source = null)
    {
        if (Kind != expectedKind)
            throw new InvalidDataException(
                $"{source ?? "optimizer state"}: written by optimizer '{Kind}', this run uses '{expectedKind}'; " +
                "resume with the same --optimizer or start a new run");
    }

    /// <summary>The step count of <paramref name="parameter"/>, with a clear error when it is missing.</summary>
    public long StepOf(string parameter, string? source = null) =>
        Steps.TryGetValue(parameter, out var s) ? s
            : throw new InvalidDataException($"{source ?? "optimizer state"}: no state for parameter '{parameter}' " +
                $"(the state holds {Steps.Count} parameters; was it saved from a different model or LoRA configuration?)");

    /// <summary>Copies the saved tensor <c>{parameter}.{slot}</c> into <paramref name="target"/>, checking its shape.</summary>
    public void CopyInto(string parameter, string slot, Tensor target, string? source = null)
    {
        string key = Key(parameter, slot);
        if (!Tensors.TryGetValue(key, out var saved))
            throw new InvalidDataException($"{source ?? "optimizer state"}: tensor '{key}' is missing");
        if (!saved.shape.SequenceEqual(target.shape))
            throw new InvalidDataException(
                $"{source ?? "optimizer state"}: '{key}' has shape [{string.Join(", ", saved.shape)}], " +
                $"expected [{string.Join(", ", target.shape)}]");
        using var _ = no_grad();
        target.copy_(saved);
    }
}
