using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Common;

/// <summary>
/// Activation (gradient) checkpointing: runs a function without keeping its intermediate activations and recomputes
/// them during the backward pass — torch.utils.checkpoint, which TorchSharp lacks, built on a custom autograd function.
/// </summary>
/// <remarks>
/// The trainable parameters the function uses are passed to the autograd function as inputs of their own. Without
/// that, a block whose inputs need no gradient (the first block when only LoRA weights train) would produce an output
/// that autograd considers constant, and its LoRA weights would silently receive no gradient (the pitfall of
/// PyTorch's reentrant checkpoint). The function must be deterministic: dropout in it would draw different masks on
/// recomputation (PixArt's dropout is 0).
/// </remarks>
public static class GradientCheckpoint
{
    /// <summary>
    /// Computes <paramref name="function"/>(<paramref name="inputs"/>) keeping only the inputs for backward.
    /// <paramref name="parameters"/>: every parameter the function reads; those with requires_grad get gradients.
    /// Inputs may be null. Without grad mode this is a plain call.
    /// </summary>
    public static Tensor Run(Func<Tensor?[], Tensor> function, Tensor?[] inputs, IEnumerable<Tensor> parameters)
    {
        var trainable = parameters.Where(p => p.requires_grad).ToArray();
        bool needsGraph = inputs.Any(t => t is not null && t.requires_grad) || trainable.Length > 0;
        if (!is_grad_enabled() || !needsGraph) return function(inputs);

        var args = new object?[2 + inputs.Length + trainable.Length];
        args[0] = function;
        args[1] = inputs.Length;
        inputs.CopyTo(args, 2);
        trainable.CopyTo(args, 2 + inputs.Length);
        return CheckpointFunction.apply(args!);
    }

    sealed class CheckpointFunction : autograd.SingleTensorFunction<CheckpointFunction>
    {
        public override string Name => "GradientCheckpoint";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            // Runs under no_grad (the Function machinery disables it): nothing inside is recorded.
            var function = (Func<Tensor?[], Tensor>)vars[0];
            int inputCount = (int)vars[1];
            var inputs = new Tensor?[inputCount];
            for (int i = 0; i < inputCount; i++) inputs[i] = vars[2 + i] as Tensor;

            ctx.save_data("function", function);
            ctx.save_data("inputCount", inputCount);
            ctx.save_data("argCount", vars.Length);
            ctx.save_data("inputNeedsGrad", inputs.Select(t => t is not null && t.requires_grad).ToArray());
            ctx.save_for_backward(vars.Skip(2).Select(v => (v as Tensor)!).ToList());
            return function(inputs);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
        {
            var function = (Func<Tensor?[], Tensor>)ctx.get_data("function");
            int inputCount = (int)ctx.get_data("inputCount");
            int argCount = (int)ctx.get_data("argCount");
            var inputNeedsGrad = (bool[])ctx.get_data("inputNeedsGrad");
            var saved = ctx.get_saved_variables();

            using var scope = NewDisposeScope();
            var replay = new Tensor?[inputCount];
            var wrt = new List<Tensor>();
            var slotOf = new List<int>();   // argument position of each tensor in wrt
            for (int i = 0; i < inputCount; i++)
            {
                var t = saved[i];
                if (t is null || t.IsInvalid) continue;
                replay[i] = t.detach().requires_grad_(inputNeedsGrad[i]);
                if (inputNeedsGrad[i]) { wrt.Add(replay[i]!); slotOf.Add(2 + i); }
            }
            for (int i = inputCount; i < saved.Count; i++) { wrt.Add(saved[i]); slotOf.Add(2 + i); }

            Tensor output;
            using (enable_grad()) output = function(replay);

            var result = new Tensor[argCount];
            if (wrt.Count > 0 && output.requires_grad)
            {
                var grads = autograd.grad(new[] { output }, wrt, new[] { grad_output }, allow_unused: true);
                for (int k = 0; k < grads.Count; k++)
                {
                    var g = grads[k];
                    if (g is not null && !g.IsInvalid) result[slotOf[k]] = g.MoveToOuterDisposeScope();
                }
            }
            return result.ToList();
        }
    }
}
