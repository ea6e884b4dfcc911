using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.TextEncoder;

#pragma warning disable IDE1006 // fields carry the Hugging Face names so that state_dict() gives the published keys

/// <summary>Builds parameters without initialising them: weights are read from a checkpoint right after.</summary>
static class T5Init
{
    /// <summary>An uninitialised frozen parameter owned by its module, outside any dispose scope (a module built
    /// inside a scope must not lose its weights when the scope ends).</summary>
    public static Parameter NewParameter(long[] shape, Device device, ScalarType dtype)
    {
        var p = new Parameter(empty(shape, dtype, device), requires_grad: false);
        p.DetachFromDisposeScope();
        return p;
    }

    public static Linear Linear(long inFeatures, long outFeatures, Device device, ScalarType dtype) =>
        nn.Linear(NewParameter(new[] { outFeatures, inFeatures }, device, dtype));

    public static T5Embedding Embedding(long count, long dim, Device device, ScalarType dtype) => new(count, dim, device, dtype);
}

/// <summary>
/// A lookup table with one <c>weight</c> parameter [count, dim], like nn.Embedding. TorchSharp's native
/// Embedding allocates and initialises its own weight even when built from a given tensor (and then
/// reports that one in state_dict), so it cannot be filled in place; this one holds exactly the tensor given.
/// </summary>
public sealed class T5Embedding : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;

    public T5Embedding(long count, long dim, Device device, ScalarType dtype) : base("Embedding")
    {
        weight = T5Init.NewParameter(new[] { count, dim }, device, dtype);
        RegisterComponents();
    }

    public Tensor Weight => weight;

    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var shape = ids.shape.Append(weight.shape[1]).ToArray();
        return weight.index_select(0, ids.reshape(-1)).reshape(shape).MoveToOuterDisposeScope();
    }
}
