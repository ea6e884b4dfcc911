namespace PixArtLora.Training.Progress;

/// <summary>What the training loop reports after each optimizer step.</summary>
/// <param name="Step">Optimizer updates done so far (1 after the first).</param>
/// <param name="TotalSteps">Updates the run will do in all.</param>
/// <param name="Epoch">Current epoch, 1-based for display.</param>
/// <param name="TotalEpochs">Epochs of the run (0 when unknown).</param>
/// <param name="Loss">This step's loss (averaged over its accumulated micro-batches).</param>
/// <param name="LearningRate">The learning rate this step used.</param>
public sealed record ProgressUpdate(long Step, long TotalSteps, long Epoch, long TotalEpochs, double Loss, double LearningRate);

/// <summary>Shows training progress to a person: a live bar in a terminal, periodic lines in a log (CI).</summary>
public interface ITrainingProgress : IDisposable
{
    /// <summary>Starts timing; <paramref name="startStep"/> is non-zero when resuming.</summary>
    void Start(long startStep, long totalSteps);

    /// <summary>Called after every optimizer step.</summary>
    void Report(ProgressUpdate update);

    /// <summary>Prints an event (checkpoint written, validation images saved) without garbling the bar.</summary>
    void Message(string line);

    /// <summary>Ends the display, printing <paramref name="summary"/> if given.</summary>
    void Finish(string? summary = null);
}
