using PixArtLora.Models.TextEncoder;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Parity.Kinds;

/// <summary>
/// Kind "t5-encoder": load the case's text_encoder/ folder, run input_ids with and without the attention mask,
/// compare last_hidden_state; the relative-position buckets (the case's config and T5's real 32/128), the
/// layer-0 position bias and every hidden state are checked too, so a mismatch shows where it starts.
/// </summary>
public sealed class T5Parity : IParityKind
{
    public IReadOnlyCollection<string> Kinds { get; } = new[] { "t5-encoder" };

    public void Run(ParityCase c)
    {
        string dir = c.PathOf(c.Json.TryGetProperty("text_encoder_dir", out var d) ? d.GetString()! : "text_encoder");
        using var model = T5EncoderModel.Load(dir, CPU, ScalarType.Float32);
        var config = model.Config;

        if (c.Has("relative_positions"))
        {
            var rel = c.Tensor("relative_positions");
            if (c.Has("relative_position_bucket"))
                TensorAssert.Equal(T5RelativePosition.Bucket(rel, true, config.RelativeAttentionNumBuckets, config.RelativeAttentionMaxDistance),
                    c.Tensor("relative_position_bucket"), $"{c.Name}:relative_position_bucket");
            if (c.Has("relative_position_bucket_32_128"))
                TensorAssert.Equal(T5RelativePosition.Bucket(rel, true, 32, 128), c.Tensor("relative_position_bucket_32_128"),
                    $"{c.Name}:relative_position_bucket_32_128");
        }

        var ids = c.Tensor("input_ids");
        var mask = c.Tensor("attention_mask");
        if (c.Has("debug_position_bias"))
        {
            long length = ids.shape[1];
            c.AssertClose("debug_position_bias", model.Encoder.Blocks[0].SelfAttentionLayer.Attention.ComputeBias(length, length));
        }

        var hidden = new List<Tensor>();
        var output = model.Forward(ids, mask, hidden);
        if (c.Has("debug_hidden_states"))
        {
            var expected = c.Tensor("debug_hidden_states");
            Assert.Equal(expected.shape[0], hidden.Count);
            for (int i = 0; i < hidden.Count; i++)
                TensorAssert.AllClose(hidden[i], expected[i], c.Atol, c.Rtol, $"{c.Name}:debug_hidden_states[{i}]");
        }
        foreach (var h in hidden) h.Dispose();
        c.AssertClose("last_hidden_state", output);
        if (c.Has("last_hidden_state_no_mask"))
            c.AssertClose("last_hidden_state_no_mask", model.forward(ids, null));
    }
}
