namespace PixArtLora.Tests.Parity;

/// <summary>
/// Runs the cases of one <c>kind</c> (case.json). Implementations are found by reflection, so each
/// model or tool adds its own file without touching the harness.
/// </summary>
public interface IParityKind
{
    /// <summary>The case.json kinds this runner handles.</summary>
    IReadOnlyCollection<string> Kinds { get; }

    /// <summary>Loads the reference files, runs our implementation, asserts the outputs (throwing on mismatch).</summary>
    void Run(ParityCase c);
}
