using PixArtLora.Models.Common;
using PixArtLora.Models.Transformer;
using PixArtLora.Tests.Parity;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Transformer;

/// <summary>Swapping a projection for a wrapper (what LoRA does) by its state-dict path.</summary>
public class ModuleSurgeryTests
{
    /// <summary>A minimal adapter: base(x) + scale · x·Aᵀ·Bᵀ, with its own float32 weights.</summary>
    sealed class AddLowRank : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        public readonly nn.Module<Tensor, Tensor> base_layer;
        public readonly Linear down;
        public readonly Linear up;
#pragma warning restore IDE1006
        readonly double _scale;

        public AddLowRank(nn.Module<Tensor, Tensor> wrapped, double scale) : base(nameof(AddLowRank))
        {
            base_layer = wrapped;
            var l = (Linear)wrapped;
            down = nn.Linear(l.in_features, 2, hasBias: false);
            up = nn.Linear(2, l.out_features, hasBias: false);
            _scale = scale;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var y = DtypeBoundary.Call(base_layer, x);
            return y + _scale * up.call(down.call(x.to(float32))).to(y.dtype);
        }
    }

    static PixArtTransformer2DModel Load(ScalarType dtype = ScalarType.Float32) =>
        PixArtTransformer2DModel.FromPretrained(TestPaths.Fixture("parity", "transformer-sigma", "transformer"), dtype: dtype);

    [Theory]
    [InlineData("transformer_blocks.0.attn1.to_q")]
    [InlineData("transformer_blocks.1.attn2.to_k")]
    [InlineData("transformer_blocks.1.attn2.to_out.0")]
    [InlineData("transformer_blocks.0.ff.net.2")]
    [InlineData("transformer_blocks.0.ff.net.0.proj")]
    public void ReplacedProjectionIsUsedAndKeepsItsPath(string path)
    {
        using var scope = NewDisposeScope();
        using var model = Load();
        model.eval();
        var inputs = TransformerInputs.For(model.Config);
        using var _ = no_grad();
        var before = inputs.Run(model);
        var original = (Linear)ModuleSurgery.Get(model, path);

        var wrapper = (AddLowRank)ModuleSurgery.Replace(model, path, m => new AddLowRank(m, scale: 0.0));
        Assert.Same(wrapper, ModuleSurgery.Get(model, path));
        Assert.Same(original, wrapper.base_layer);
        var keys = model.state_dict().Keys.ToList();
        Assert.Contains(path + ".base_layer.weight", keys);
        Assert.Contains(path + ".down.weight", keys);
        Assert.DoesNotContain(path + ".weight", keys);
        TensorAssert.AllClose(inputs.Run(model), before, 0, 0, "scale 0 wrapper");   // wrapper with no effect: same output

        ModuleSurgery.Replace(model, path, m => new AddLowRank(((AddLowRank)m).base_layer, scale: 1.0));
        var after = inputs.Run(model);
        Assert.True((after - before).abs().max().item<float>() > 1e-3, "the replacement is not used by forward");
    }

    [Fact]
    public void Fp32AdapterOnBf16BaseRuns()
    {
        using var scope = NewDisposeScope();
        using var model = Load(ScalarType.BFloat16);
        model.eval();
        foreach (var (path, _) in ModuleSurgery.Linears(model).Where(l => l.Path.Contains(".attn")).ToList())
            ModuleSurgery.Replace(model, path, m => new AddLowRank(m, 0.5));
        Assert.Equal(16, model.named_modules().Count(m => m.module is AddLowRank));
        var inputs = TransformerInputs.For(model.Config);
        using var _ = no_grad();
        var output = inputs.Run(model);
        Assert.Equal(ScalarType.Float32, output.dtype);
        Assert.False(output.isnan().any().item<bool>());
    }

    [Fact]
    public void LinearsListsEveryProjectionByPath()
    {
        using var model = Load();
        var paths = ModuleSurgery.Linears(model).Select(l => l.Path).ToHashSet();
        Assert.Contains("transformer_blocks.0.attn1.to_out.0", paths);
        Assert.Contains("caption_projection.linear_1", paths);
        Assert.Contains("adaln_single.linear", paths);
        Assert.Equal(2 * (4 + 4 + 2) + 2 + 2 + 1 + 1, paths.Count);   // per block: attn1, attn2, ff; caption, timestep, adaln, proj_out
    }

    [Fact]
    public void UnknownPathIsAClearError()
    {
        using var model = Load();
        var e = Assert.Throws<KeyNotFoundException>(() => ModuleSurgery.Replace(model, "transformer_blocks.0.attn3.to_q", m => m));
        Assert.Contains("transformer_blocks.0.attn3", e.Message);
        Assert.Contains("attn1", e.Message);
    }
}
