using PixArtLora.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Transformer;

/// <summary>
/// diffusers' <c>PixArtAlphaTextProjection</c> (the <c>caption_projection</c> keys): T5 features [B, L, 4096] →
/// linear_1 → GELU(tanh) → linear_2 → [B, L, D].
/// </summary>
public sealed class PixArtAlphaTextProjection : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // diffusers key names
    public nn.Module<Tensor, Tensor> linear_1;
    public nn.Module<Tensor, Tensor> linear_2;
#pragma warning restore IDE1006

    public PixArtAlphaTextProjection(int inFeatures, int hiddenSize, Device? device = null, ScalarType? dtype = null) : base(nameof(PixArtAlphaTextProjection))
    {
        linear_1 = nn.Linear(inFeatures, hiddenSize, hasBias: true, device: device, dtype: dtype);
        linear_2 = nn.Linear(hiddenSize, hiddenSize, hasBias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor caption)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.gelu(DtypeBoundary.Call(linear_1, caption), GELU.Approximate.tanh);
        return DtypeBoundary.Call(linear_2, h).MoveToOuterDisposeScope();
    }
}
