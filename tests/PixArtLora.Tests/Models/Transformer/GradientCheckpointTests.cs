using PixArtLora.Models.Transformer;
using PixArtLora.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Models.Transformer;

/// <summary>Checkpointed blocks must give the gradients of the plain forward, for full fine-tuning and for adapters.</summary>
public class GradientCheckpointTests
{
    static Dictionary<string, Tensor> Gradients(PixArtTransformer2DModel model, TransformerInputs inputs, bool checkpoint, Tensor? latentGrad = null)
    {
        model.train();
        model.GradientCheckpointing = checkpoint;
        model.zero_grad();
        var latents = inputs.Latents.detach().requires_grad_(true);
        var output = model.forward(latents, inputs.Captions, inputs.Timestep, inputs.Mask, inputs.Resolution, inputs.AspectRatio);
        var loss = (output * output).mean();
        loss.backward();
        var grads = model.named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        grads["<latents>"] = latents.grad!.clone();
        return grads;
    }

    [Theory]
    [InlineData("transformer-sigma")]
    [InlineData("transformer-alpha-ms")]
    public void FullFineTuningGradientsAreUnchanged(string caseName)
    {
        using var scope = NewDisposeScope();
        using var model = PixArtTransformer2DModel.FromPretrained(TestPaths.Fixture("parity", caseName, "transformer"));
        var inputs = TransformerInputs.For(model.Config);
        var plain = Gradients(model, inputs, checkpoint: false);
        var checkpointed = Gradients(model, inputs, checkpoint: true);

        Assert.Equal(model.parameters().Count(), plain.Count - 1);
        Assert.Equal(plain.Keys.OrderBy(k => k), checkpointed.Keys.OrderBy(k => k));
        foreach (var (name, g) in plain)
            TensorAssert.AllClose(checkpointed[name], g, 1e-6, 1e-5, name);
        Assert.True(plain["transformer_blocks.0.attn1.to_q.weight"].abs().sum().item<float>() > 0);
    }

    [Fact]
    public void OnlyInnerParametersTrainable_StillGetGradients()
    {
        // The adapter case: everything frozen except one projection inside block 0, so no input of the
        // checkpointed block requires a gradient. Its weight must still receive the plain-forward gradient.
        using var scope = NewDisposeScope();
        using var model = PixArtTransformer2DModel.FromPretrained(TestPaths.Fixture("parity", "transformer-sigma", "transformer"));
        foreach (var p in model.parameters()) p.requires_grad = false;
        var trainable = model.transformer_blocks[0].attn2!.to_v.parameters().First();
        trainable.requires_grad = true;
        var inputs = TransformerInputs.For(model.Config);

        Tensor GradOf(bool checkpoint)
        {
            model.train();
            model.GradientCheckpointing = checkpoint;
            trainable.grad?.zero_();
            var output = inputs.Run(model);
            (output * output).mean().backward();
            return trainable.grad!.clone();
        }

        var plain = GradOf(false);
        var checkpointed = GradOf(true);
        Assert.True(plain.abs().sum().item<float>() > 0);
        TensorAssert.AllClose(checkpointed, plain, 1e-6, 1e-5, "attn2.to_v.weight");
    }

    [Fact]
    public void InferenceIsUnaffected()
    {
        using var scope = NewDisposeScope();
        using var model = PixArtTransformer2DModel.FromPretrained(TestPaths.Fixture("parity", "transformer-sigma", "transformer"));
        var inputs = TransformerInputs.For(model.Config);
        model.train();
        model.GradientCheckpointing = false;
        var plain = inputs.Run(model);
        model.GradientCheckpointing = true;
        var checkpointed = inputs.Run(model);
        TensorAssert.Equal(checkpointed, plain, "output");
    }
}
