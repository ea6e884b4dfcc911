using System.Text.Json;
using PixArtLora.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Parity.Kinds;

/// <summary>
/// Kind <c>transformer</c>: loads <c>model_dir</c> (config.json + safetensors, strict), runs the call of case.json with
/// its inputs and compares <c>sample</c>. The reference's debug tensors are compared too, in forward order, so a
/// mismatch is reported where it starts (pos_embed, timestep embedding, a block, proj_out …).
/// </summary>
public sealed class TransformerParity : IParityKind
{
    public IReadOnlyCollection<string> Kinds { get; } = new[] { "transformer" };

    static readonly string[] KnownInputs =
        { "hidden_states", "encoder_hidden_states", "encoder_attention_mask", "timestep", "resolution", "aspect_ratio" };

    public void Run(ParityCase c)
    {
        string modelDir = c.Json.TryGetProperty("model_dir", out var md) ? md.GetString()! : "transformer";
        using var model = PixArtTransformer2DModel.FromPretrained(c.PathOf(modelDir));
        model.eval();

        var inputNames = c.Json.GetProperty("inputs").EnumerateArray().Select(e => e.GetString()!).ToList();
        var unknown = inputNames.Except(KnownInputs).ToList();
        if (unknown.Count > 0) throw new InvalidOperationException($"{c.Name}: inputs this runner does not know: {string.Join(", ", unknown)}");
        Tensor? Input(string name) => inputNames.Contains(name) ? c.Tensor(name) : null;

        var taps = new List<(string Name, Tensor Value)>();
        Tensor sample;
        using (no_grad())
            sample = model.forward(
                Input("hidden_states")!, Input("encoder_hidden_states")!, Input("timestep")!,
                encoderAttentionMask: Input("encoder_attention_mask"),
                resolution: Input("resolution"), aspectRatio: Input("aspect_ratio"),
                tap: (name, t) => taps.Add((name, t.detach().clone().DetachFromDisposeScope())));

        foreach (var (name, value) in taps)
            if (c.Has("debug." + name)) c.AssertClose("debug." + name, value);

        var outputs = c.Json.GetProperty("outputs").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Equal(new[] { "sample" }, outputs);
        c.AssertClose("sample", sample);
    }
}
