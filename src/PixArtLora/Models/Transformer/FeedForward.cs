using PixArtLora.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Transformer;

/// <summary>diffusers' <c>GELU</c> activation module: a projection followed by GELU (tanh approximation for PixArt).</summary>
public sealed class GeluProjection : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // diffusers key names
    public nn.Module<Tensor, Tensor> proj;
#pragma warning restore IDE1006

    readonly GELU.Approximate _approximate;

    public GeluProjection(int dimIn, int dimOut, bool approximateTanh, bool bias = true, Device? device = null, ScalarType? dtype = null)
        : base(nameof(GeluProjection))
    {
        _approximate = approximateTanh ? GELU.Approximate.tanh : GELU.Approximate.none;
        proj = nn.Linear(dimIn, dimOut, hasBias: bias, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return nn.functional.gelu(DtypeBoundary.Call(proj, input), _approximate).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers' <c>FeedForward</c> (attention.py) with <c>activation_fn = "gelu-approximate"</c>: keys
/// <c>net.0.proj</c> (D → 4D, then GELU-tanh), <c>net.1</c> dropout, <c>net.2</c> (4D → D).
/// </summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // diffusers key names
    public readonly ModuleList<nn.Module<Tensor, Tensor>> net;
#pragma warning restore IDE1006

    public FeedForward(int dim, string activationFn, double dropout, int mult = 4, Device? device = null, ScalarType? dtype = null)
        : base(nameof(FeedForward))
    {
        int inner = dim * mult;
        bool tanh = activationFn switch
        {
            "gelu-approximate" => true,
            "gelu" => false,
            _ => throw new ArgumentException($"activation_fn '{activationFn}' is not supported (expected gelu-approximate or gelu)"),
        };
        net = new ModuleList<nn.Module<Tensor, Tensor>>(
            new GeluProjection(dim, inner, tanh, bias: true, device, dtype),
            nn.Dropout(dropout),
            nn.Linear(inner, dim, hasBias: true, device: device, dtype: dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = net[0].call(input);
        h = net[1].call(h);
        return DtypeBoundary.Call(net[2], h).MoveToOuterDisposeScope();
    }
}
