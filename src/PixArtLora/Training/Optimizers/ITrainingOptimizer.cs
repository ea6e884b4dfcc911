using TorchSharp.Modules;

namespace PixArtLora.Training.Optimizers;

/// <summary>
/// An optimizer as the trainer sees it: named parameters (the names key the saved state, so a resumed run
/// finds each parameter's moments even if the parameter order changed), one learning rate set by the
/// schedule before every step, and state that can be exported and imported exactly for resume.
/// </summary>
public interface ITrainingOptimizer : IDisposable
{
    /// <summary>Short name written into checkpoints: <c>adamw</c> or <c>came</c>.</summary>
    string Kind { get; }

    /// <summary>The parameters this optimizer updates, in the order given at construction.</summary>
    IReadOnlyList<(string Name, Parameter Parameter)> Parameters { get; }

    /// <summary>The learning rate used by the next <see cref="Step"/> (for every parameter).</summary>
    double LearningRate { get; set; }

    /// <summary>Applies one update to every parameter that has a gradient; parameters without one are skipped.</summary>
    void Step();

    /// <summary>Drops the gradients (sets them to none, as PyTorch's <c>zero_grad(set_to_none=True)</c>).</summary>
    void ZeroGrad();

    /// <summary>
    /// The optimizer's state: per-parameter tensors named <c>{parameter}.{slot}</c> (live references, not
    /// copies: write them out before the next step) and per-parameter step counts.
    /// </summary>
    OptimizerStateSnapshot ExportState();

    /// <summary>
    /// Copies <paramref name="state"/> into this optimizer's state in place. Every parameter must be present
    /// with the expected slots and shapes; otherwise a message names the first one that is not.
    /// </summary>
    void ImportState(OptimizerStateSnapshot state);
}
