using PixArtLora.IO;
using PixArtLora.Lora;
using PixArtLora.Models.Transformer;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Parity.Kinds;

/// <summary>
/// Kind <c>lora</c>: the adapter of <c>adapter_file</c> (alpha from <c>adapter_config_file</c>) attached un-merged to the
/// base transformer of <c>base_model_dir</c> at the case's <c>scale</c> must give <c>sample_with_lora</c>; merging it into the
/// base checkpoint must give the weights of <c>merged_model_dir</c> key by key, and that model <c>sample_merged</c>.
/// </summary>
public sealed class LoraParity : IParityKind
{
    public IReadOnlyCollection<string> Kinds { get; } = new[] { "lora" };

    static readonly string[] KnownInputs =
        { "hidden_states", "encoder_hidden_states", "encoder_attention_mask", "timestep", "resolution", "aspect_ratio" };

    public void Run(ParityCase c)
    {
        var j = c.Json;
        string baseDir = c.PathOf(j.GetProperty("base_model_dir").GetString()!);
        string adapter = c.PathOf(j.GetProperty("adapter_file").GetString()!);
        string? config = j.TryGetProperty("adapter_config_file", out var cf) ? c.PathOf(cf.GetString()!) : null;
        var outputs = j.GetProperty("outputs").EnumerateArray().Select(e => e.GetString()!).ToList();
        var inputNames = j.GetProperty("inputs").EnumerateArray().Select(e => e.GetString()!).ToList();
        var unknown = inputNames.Except(KnownInputs).ToList();
        if (unknown.Count > 0) throw new InvalidOperationException($"{c.Name}: inputs this runner does not know: {string.Join(", ", unknown)}");
        Tensor? Input(string name) => inputNames.Contains(name) ? c.Tensor(name) : null;
        Tensor Forward(PixArtTransformer2DModel m)
        {
            using var noGrad = no_grad();
            return m.forward(Input("hidden_states")!, Input("encoder_hidden_states")!, Input("timestep")!,
                encoderAttentionMask: Input("encoder_attention_mask"), resolution: Input("resolution"), aspectRatio: Input("aspect_ratio"));
        }

        double strength;
        using (var model = PixArtTransformer2DModel.FromPretrained(baseDir))
        {
            model.eval();
            if (outputs.Contains("sample_base")) c.AssertClose("sample_base", Forward(model));

            using var net = LoraNetwork.Attach(model);
            using var weights = LoraFile.Read(adapter, net.Catalog($"{c.Name}/{j.GetProperty("base_model_dir").GetString()}"), adapterConfigPath: config);
            if (j.TryGetProperty("targeted_module_paths", out var paths))
                Assert.Equal(paths.EnumerateArray().Select(p => p.GetString()!).Order(StringComparer.Ordinal), weights.Modules.Keys);
            if (j.TryGetProperty("r", out var r)) Assert.All(weights.Modules.Values, m => Assert.Equal(r.GetInt64(), m.Rank));
            // The case states the factor in front of B·A; our strength multiplies the file's alpha / r.
            double fileScale = weights.Modules.Values.First().Scale;
            double scale = j.TryGetProperty("scale", out var s) ? s.GetDouble() : fileScale;
            strength = scale / fileScale;
            net.LoadAdapter("case", weights, strength);
            c.AssertClose("sample_with_lora", Forward(model));
        }

        string merged = Path.Combine(TestPaths.NewTempDir("parity-lora-merge"), "merged");
        LoraMerge.MergeCheckpoint(baseDir, new[] { new LoraMergeSource(adapter, strength) }, merged);
        if (j.TryGetProperty("merged_model_dir", out var md))
        {
            using var expected = SafetensorsCheckpoint.Open(c.PathOf(md.GetString()!), TransformerFolder.WeightsBaseName);
            using var actual = SafetensorsCheckpoint.Open(merged, TransformerFolder.WeightsBaseName);
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
            foreach (var key in expected.Keys.Order(StringComparer.Ordinal))
            {
                using var e = expected.Read(key);
                using var a = actual.Read(key);
                Assert.Equal(e.dtype, a.dtype);
                TensorAssert.AllClose(a, e, c.Atol, c.Rtol, $"{c.Name}:merged {key}");
            }
        }
        if (outputs.Contains("sample_merged"))
        {
            using var model = PixArtTransformer2DModel.FromPretrained(merged);
            model.eval();
            c.AssertClose("sample_merged", Forward(model));
        }
    }
}
