using PixArtLora.Models.Common;
using PixArtLora.Models.Transformer;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Benchmarks;

/// <summary>
/// A minimal LoRA layer for the LoRA-mode benchmark until the library's LoRA module is on main:
/// y = W·x + b + (α/r)·B·A·x with W, b frozen in their dtype and A [r, in], B [out, r] trainable in float32.
/// It computes what an adapter computes (two thin products per projection and their gradients), which is all the
/// benchmark needs; it is not a file format or a training API.
/// </summary>
public sealed class StandInLoraAdapter : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // PEFT-like names
    public readonly Linear base_layer;
    public readonly Linear lora_A;
    public readonly Linear lora_B;
#pragma warning restore IDE1006
    readonly double _scale;

    /// <summary>Wraps <paramref name="baseLayer"/> (whose parameters are frozen here) with rank-<paramref name="rank"/> adapters.</summary>
    public StandInLoraAdapter(Linear baseLayer, int rank, double alpha, ScalarType adapterDtype = ScalarType.Float32) : base(nameof(StandInLoraAdapter))
    {
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), rank, "LoRA rank must be > 0");
        base_layer = baseLayer;
        foreach (var p in base_layer.parameters()) p.requires_grad = false;
        var device = baseLayer.weight.device;
        lora_A = nn.Linear(baseLayer.in_features, rank, hasBias: false, device: device, dtype: adapterDtype);
        lora_B = nn.Linear(rank, baseLayer.out_features, hasBias: false, device: device, dtype: adapterDtype);
        using (no_grad()) lora_B.weight.zero_();   // the usual start: the adapted model equals the base
        _scale = alpha / rank;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var output = DtypeBoundary.Call(base_layer, input);
        var delta = lora_B.forward(lora_A.forward(input.dtype == lora_A.weight.dtype ? input : input.to(lora_A.weight.dtype)));
        return (output + (delta * _scale).to(output.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Freezes every parameter of <paramref name="model"/> and wraps <see cref="TransformerFlops.AdapterTargets"/> of
    /// every attention (self and cross) in every block. Returns the number of trainable adapter parameters.
    /// </summary>
    public static long Inject(PixArtTransformer2DModel model, int rank, double alpha, ScalarType adapterDtype = ScalarType.Float32)
    {
        foreach (var p in model.parameters()) p.requires_grad = false;
        long trainable = 0;
        for (int i = 0; i < model.transformer_blocks.Count; i++)
            foreach (var attention in new[] { "attn1", "attn2" })
            {
                if (attention == "attn2" && model.transformer_blocks[i].attn2 is null) continue;
                foreach (var target in TransformerFlops.AdapterTargets)
                {
                    var adapter = (StandInLoraAdapter)ModuleSurgery.Replace(model, $"transformer_blocks.{i}.{attention}.{target}",
                        current => new StandInLoraAdapter((Linear)current, rank, alpha, adapterDtype));
                    trainable += adapter.lora_A.weight.numel() + adapter.lora_B.weight.numel();
                }
            }
        return trainable;
    }
}
