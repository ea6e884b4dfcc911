using PixArtLora.Lora;
using PixArtLora.Models.Transformer;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Lora;

/// <summary>Adapters on the real PixArtTransformer2DModel: tiny configs that run, full size on the meta device.</summary>
public class LoraPixArtTests
{
    static PixArtTransformer2DModel Tiny(ScalarType dtype = ScalarType.Float32) =>
        PixArtTransformer2DModel.FromPretrained(TestPaths.Fixture("parity", "lora-sigma", "transformer"), dtype: dtype);

    static (Tensor X, Tensor Caption, Tensor T, Tensor Mask) Inputs(PixArtTransformer2DModel m)
    {
        using var g = new Generator(5);
        var x = randn(new long[] { 2, m.Config.InChannels, 8, 8 }, generator: g);
        var caption = randn(new long[] { 2, 6, m.Config.CaptionChannels!.Value }, generator: g);
        var mask = tensor(new long[] { 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1 }).reshape(2, 6);
        return (x, caption, tensor(new float[] { 10, 900 }), mask);
    }

    static Tensor Forward(PixArtTransformer2DModel m, (Tensor X, Tensor Caption, Tensor T, Tensor Mask) i) =>
        m.forward(i.X, i.Caption, i.T, encoderAttentionMask: i.Mask);

    [Fact]
    public void Default_targets_wrap_the_attention_projections_and_all_linear_every_linear()
    {
        using var scope = NewDisposeScope();
        using var model = Tiny();
        int blocks = model.Config.NumLayers;
        using (var net = LoraNetwork.Attach(model))
        {
            var adapted = net.AddAdapter("a", new LoraConfig { Rank = 2 });
            Assert.Equal(8 * blocks, adapted.Count);
            Assert.All(adapted, n => Assert.Matches(@"^transformer_blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0)$", n));
        }
        using (var net = LoraNetwork.Attach(model))
        {
            var linears = model.named_modules().Where(m => m.module is TorchSharp.Modules.Linear).Select(m => m.name).Order(StringComparer.Ordinal).ToList();
            var adapted = net.AddAdapter("a", new LoraConfig { Rank = 2, Targets = LoraTargets.AllLinear });
            Assert.Equal(linears, adapted);
            Assert.Contains("adaln_single.linear", adapted);
            Assert.Contains("caption_projection.linear_2", adapted);
            Assert.Contains("proj_out", adapted);
            Assert.DoesNotContain("pos_embed.proj", adapted); // a Conv2d
        }
    }

    [Fact]
    public void A_fresh_adapter_leaves_the_model_output_unchanged_and_a_trained_one_changes_it()
    {
        using var scope = NewDisposeScope();
        using var model = Tiny();
        model.eval();
        var inputs = Inputs(model);
        Tensor before;
        using (no_grad()) before = Forward(model, inputs);
        using var net = LoraNetwork.Attach(model);
        net.AddAdapter("a", new LoraConfig { Rank = 4, Alpha = 4, Targets = LoraTargets.AllLinear });
        using (no_grad()) TensorAssert.Equal(Forward(model, inputs), before, "fresh adapter on PixArt");
        LoraTestHelpers.RandomizeB(net, "a", std: 0.1);
        using (no_grad()) Assert.True((Forward(model, inputs) - before).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void Training_with_gradient_checkpointing_moves_only_the_adapter_and_gives_the_same_gradients()
    {
        using var scope = NewDisposeScope();
        var grads = new List<Dictionary<string, Tensor>>();
        foreach (bool checkpointing in new[] { false, true })
        {
            using var model = Tiny(ScalarType.BFloat16); // frozen base in bf16, adapters in fp32
            var snapshot = LoraTestHelpers.Snapshot(model);
            using var net = LoraNetwork.Attach(model);
            net.AddAdapter("a", new LoraConfig { Rank = 4, Alpha = 4, Seed = 1 });
            LoraTestHelpers.RandomizeB(net, "a", std: 0.05);
            model.GradientCheckpointing = checkpointing;
            model.train();
            var inputs = Inputs(model);
            var opt = optim.AdamW(net.TrainableParameters(), lr: 1e-3, weight_decay: 0.01);
            for (int step = 0; step < 2; step++)
            {
                using var s = NewDisposeScope();
                opt.zero_grad();
                var loss = Forward(model, inputs).to(float32).square().mean();
                loss.backward();
                if (step == 0)
                    grads.Add(model.named_parameters().Where(p => p.parameter.grad is not null)
                        .ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone().DetachFromDisposeScope()));
                opt.step();
            }
            foreach (var (name, p) in model.named_parameters())
            {
                if (name.Contains(".lora_")) { Assert.Equal(ScalarType.Float32, p.dtype); continue; }
                Assert.True(LoraTestHelpers.BitEqual(p, snapshot[name]), $"{name} changed (checkpointing {checkpointing})");
            }
        }
        Assert.Equal(grads[0].Keys.Order(), grads[1].Keys.Order());
        Assert.All(grads[0].Keys, k => Assert.Contains(".lora_", k));
        Assert.Equal(2 * 8 * 2, grads[0].Count); // A and B of 8 projections in each of 2 blocks
        foreach (var (name, g) in grads[0]) TensorAssert.AllClose(grads[1][name], g, 1e-6, 1e-4, $"grad {name}");
    }

    [Fact]
    public void Full_size_sigma_gets_the_documented_adapter_size_on_the_meta_device()
    {
        using var scope = NewDisposeScope();
        // PixArt-Σ 1024: 28 blocks of width 1152 (16 heads × 72), caption 4096; nothing is allocated on meta.
        var config = new PixArtTransformerConfig { UseAdditionalConditions = false };
        using var model = new PixArtTransformer2DModel(config, device: META);
        using var net = LoraNetwork.Attach(model);
        var adapted = net.AddAdapter("a", new LoraConfig { Rank = 16, Alpha = 16 }, device: META);
        Assert.Equal(28 * 8, adapted.Count);
        long adapterParams = net.TrainableParameters().Sum(p => p.numel());
        Assert.Equal(28L * 8 * 16 * (1152 + 1152), adapterParams); // 8,257,536
        Assert.Equal(adapterParams, model.parameters().Where(p => p.requires_grad).Sum(p => p.numel()));
    }
}
