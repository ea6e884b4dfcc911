using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// The one attention layer of the VAE mid-block: diffusers' <c>Attention</c> built with
/// <c>_from_deprecated_attn_block=True</c>, one head of width C, <c>group_norm</c> on the input,
/// a residual connection and upcast softmax (attention_processor.py, <c>AttnProcessor</c>).
/// Each of the h·w positions attends to all others.
/// </summary>
public sealed class MidBlockAttention : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face key names
    readonly GroupNorm group_norm;
    readonly Linear to_q;
    readonly Linear to_k;
    readonly Linear to_v;
    readonly ModuleList<Linear> to_out; // diffusers' to_out is [Linear, Dropout]; the dropout has no weights and p = 0.
#pragma warning restore IDE1006

    public MidBlockAttention(long channels, long groups, double eps, Device? device = null, ScalarType? dtype = null)
        : base(nameof(MidBlockAttention))
    {
        group_norm = InitializedGroupNorm.Create(groups, channels, eps, device, dtype);
        to_q = nn.Linear(channels, channels, hasBias: true, device: device, dtype: dtype);
        to_k = nn.Linear(channels, channels, hasBias: true, device: device, dtype: dtype);
        to_v = nn.Linear(channels, channels, hasBias: true, device: device, dtype: dtype);
        to_out = nn.ModuleList(nn.Linear(channels, channels, hasBias: true, device: device, dtype: dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        long b = input.shape[0], c = input.shape[1], h = input.shape[2], w = input.shape[3];
        // [B, C, H, W] → group norm over channels → tokens [B, H·W, C]
        var tokens = group_norm.call(input.reshape(b, c, h * w)).transpose(1, 2);
        var q = to_q.call(tokens);
        var k = to_k.call(tokens);
        var v = to_v.call(tokens);
        tokens.Dispose();
        // diffusers computes softmax(q·kᵀ/√C) in float32 then casts back ("upcast_softmax"). PyTorch's fused
        // scaled_dot_product_attention (the default AttnProcessor2_0 on torch 2) gives the same result with float
        // accumulation, without materialising the (H·W)² score matrix: 17 GB in fp32 for a 256×256 latent.
        // Given as [B, heads = 1, tokens, C]: libtorch picks its fused (flash) CPU kernel only for 4-D inputs and
        // falls back to the materialising math path for 3-D ones.
        var attended = nn.functional.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1);
        q.Dispose(); k.Dispose(); v.Dispose();
        var projected = to_out[0].call(attended);
        attended.Dispose();
        var result = projected.transpose(-1, -2).reshape(b, c, h, w) + input;
        return result.MoveToOuterDisposeScope();
    }
}
