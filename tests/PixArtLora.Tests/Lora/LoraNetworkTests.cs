using PixArtLora.Lora;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Lora;

public class LoraNetworkTests
{
    static readonly string[] AttentionSuffixes = { "attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0" };

    [Fact]
    public void Default_targets_are_the_attention_projections_of_every_block()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel(blocks: 3);
        using var net = LoraNetwork.Attach(model);
        var adapted = net.AddAdapter("default", new LoraConfig { Rank = 2 });
        var expected = Enumerable.Range(0, 3).SelectMany(b => AttentionSuffixes.Select(s => $"transformer_blocks.{b}.{s}")).Order(StringComparer.Ordinal);
        Assert.Equal(expected, adapted);
    }

    [Fact]
    public void Presets_and_block_selection_pick_the_documented_layers()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel(blocks: 3);

        using (var net = LoraNetwork.Attach(model))
        {
            var ff = net.AddAdapter("a", new LoraConfig { Rank = 2, Targets = LoraTargets.AttentionAndFeedForward });
            Assert.Equal(3 * 10, ff.Count);
            Assert.Contains("transformer_blocks.2.ff.net.0.proj", ff);
            Assert.Contains("transformer_blocks.2.ff.net.2", ff);
        }
        using (var net = LoraNetwork.Attach(model))
        {
            var all = net.AddAdapter("a", new LoraConfig { Rank = 2, Targets = LoraTargets.AllLinear });
            // every Linear: 10 per block + adaln_single.linear + timestep linear_1/2 + caption linear_1/2 + proj_out; never the conv pos_embed.proj
            Assert.Equal(3 * 10 + 6, all.Count);
            Assert.Contains("adaln_single.linear", all);
            Assert.Contains("adaln_single.emb.timestep_embedder.linear_2", all);
            Assert.Contains("caption_projection.linear_1", all);
            Assert.Contains("proj_out", all);
            Assert.DoesNotContain("pos_embed.proj", all);
        }
        using (var net = LoraNetwork.Attach(model))
        {
            var targets = LoraTargets.Parse("attn2.to_k,attn2.to_v") with { Blocks = LoraTargets.ParseBlocks("1-2") };
            var some = net.AddAdapter("a", new LoraConfig { Rank = 2, Targets = targets });
            Assert.Equal(new[] { "transformer_blocks.1.attn2.to_k", "transformer_blocks.1.attn2.to_v", "transformer_blocks.2.attn2.to_k", "transformer_blocks.2.attn2.to_v" }, some);
        }
    }

    [Fact]
    public void Targets_that_match_nothing_are_an_error_naming_the_layers()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel();
        using var net = LoraNetwork.Attach(model);
        var e = Assert.Throws<ArgumentException>(() => net.AddAdapter("a", new LoraConfig { Targets = LoraTargets.Parse("q_proj,v_proj") }));
        Assert.Contains("q_proj,v_proj", e.Message);
        Assert.Contains("transformer_blocks.0.attn1.to_q", e.Message);
    }

    [Fact]
    public void A_fresh_adapter_changes_nothing()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel();
        var inputs = model.Inputs();
        var before = LoraTestHelpers.Run(model, inputs);
        using var net = LoraNetwork.Attach(model);
        net.AddAdapter("default", new LoraConfig { Rank = 4, Alpha = 8, Targets = LoraTargets.AllLinear });
        var after = LoraTestHelpers.Run(model, inputs);
        TensorAssert.Equal(after, before, "fresh adapter");

        // …while a non-zero B does change it (so the hooks are live).
        LoraTestHelpers.RandomizeB(net, "default");
        Assert.True((LoraTestHelpers.Run(model, inputs) - before).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void Only_adapters_train_and_base_weights_stay_bit_identical()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel();
        var snapshot = LoraTestHelpers.Snapshot(model);
        using var net = LoraNetwork.Attach(model);
        net.AddAdapter("default", new LoraConfig { Rank = 4, Alpha = 4, Dropout = 0.1, Targets = LoraTargets.AttentionAndFeedForward });

        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        Assert.Equal(net.TrainableParameters().Count(), trainable.Count);
        Assert.All(model.named_parameters().Where(p => p.parameter.requires_grad), p => Assert.Contains(".lora_", p.name));

        var (x, caption) = model.Inputs();
        var target = randn(2, 4, 5);
        // AdamW with weight decay: decay would move any base weight the optimizer could reach.
        var opt = optim.AdamW(net.TrainableParameters(), lr: 1e-2, weight_decay: 0.1);
        model.train();
        float first = 0, last = 0;
        for (int step = 0; step < 15; step++)
        {
            using var s = NewDisposeScope();
            opt.zero_grad();
            var loss = (model.call(x, caption) - target).square().mean();
            loss.backward();
            opt.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.True(last < first, $"loss did not fall: {first} → {last}");
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.Contains(".lora_")) continue;
            Assert.True(LoraTestHelpers.BitEqual(p, snapshot[name]), $"{name} changed");
            Assert.Null(p.grad);
        }
    }

    [Fact]
    public void Several_adapters_add_up_with_their_strengths_and_come_off_cleanly()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel();
        var inputs = model.Inputs();
        var plain = LoraTestHelpers.Run(model, inputs);
        var snapshot = LoraTestHelpers.Snapshot(model);

        using var net = LoraNetwork.Attach(model);
        net.AddAdapter("style", new LoraConfig { Rank = 2, Alpha = 4 });
        net.AddAdapter("subject", new LoraConfig { Rank = 3, Alpha = 3, Targets = LoraTargets.AttentionAndFeedForward, Seed = 9 });
        LoraTestHelpers.RandomizeB(net, "style", seed: 1);
        LoraTestHelpers.RandomizeB(net, "subject", seed: 2);
        net.SetStrength("style", 0.7);
        net.SetStrength("subject", -0.4);
        var both = LoraTestHelpers.Run(model, inputs);

        // Reference: a separate copy of the model whose weights have W + Σ strength · (alpha/r) · B·A written in.
        using var reference = new TinyPixArtLikeModel();
        var refParams = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
        {
            foreach (var (name, value) in snapshot) refParams[name].copy_(value);
            foreach (var (module, layer) in net.Layers)
            {
                var w = refParams[module + ".weight"];
                if (layer.HasAdapter("style")) { var (a, b) = layer.Factors("style"); w.add_(b.weight.matmul(a.weight) * (0.7 * 4 / 2.0)); }
                if (layer.HasAdapter("subject")) { var (a, b) = layer.Factors("subject"); w.add_(b.weight.matmul(a.weight) * (-0.4 * 3 / 3.0)); }
            }
        }
        TensorAssert.AllClose(both, LoraTestHelpers.Run(reference, inputs), 1e-5, 1e-5, "two adapters vs merged reference");

        net.SetStrength("subject", 0);
        net.SetStrength("style", 0);
        TensorAssert.AllClose(LoraTestHelpers.Run(model, inputs), plain, 0, 0, "all strengths zero");

        net.RemoveAdapter("subject");
        Assert.Equal(new[] { "style" }, net.AdapterNames);
        Assert.All(net.Layers.Keys, k => Assert.DoesNotContain("ff.", k)); // layers only "subject" used are gone
        net.Unload();
        Assert.Empty(model.named_parameters().Where(p => p.name.Contains("lora_")));
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
        TensorAssert.Equal(LoraTestHelpers.Run(model, inputs), plain, "after unload");
    }

    [Fact]
    public void Merge_and_unload_bakes_the_update_into_the_weights()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel();
        var inputs = model.Inputs();
        using var net = LoraNetwork.Attach(model);
        net.AddAdapter("a", new LoraConfig { Rank = 4, Alpha = 2 });
        LoraTestHelpers.RandomizeB(net, "a");
        net.SetStrength("a", 0.5);
        var unmerged = LoraTestHelpers.Run(model, inputs);
        net.MergeAndUnload();
        Assert.Empty(net.Layers);
        Assert.Empty(model.named_parameters().Where(p => p.name.Contains("lora_")));
        TensorAssert.AllClose(LoraTestHelpers.Run(model, inputs), unmerged, 1e-5, 1e-5, "merged vs unmerged");
    }

    [Fact]
    public void Adapter_parameters_are_reachable_from_the_model_under_peft_names()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyPixArtLikeModel();
        using var net = LoraNetwork.Attach(model);
        net.AddAdapter("default", new LoraConfig { Rank = 2 });
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("transformer_blocks.0.attn1.to_q.weight", names); // base names unchanged
        Assert.Contains("transformer_blocks.0.attn1.to_q.lora_A.default.weight", names);
        Assert.Contains("transformer_blocks.1.attn2.to_out.0.lora_B.default.weight", names);
    }
}
