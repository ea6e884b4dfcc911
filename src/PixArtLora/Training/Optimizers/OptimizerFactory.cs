using TorchSharp.Modules;

namespace PixArtLora.Training.Optimizers;

/// <summary>Builds an optimizer from its command-line name.</summary>
public static class OptimizerFactory
{
    /// <summary>The accepted values of <c>--optimizer</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = new[] { "adamw", "came" };

    /// <summary>
    /// Creates <paramref name="name"/> (case-insensitive) over <paramref name="parameters"/>. Values left null
    /// take each optimizer's own default (AdamW: the diffusers scripts'; CAME: PixArt's).
    /// </summary>
    public static ITrainingOptimizer Create(string name, IEnumerable<(string Name, Parameter Parameter)> parameters,
        double learningRate, double? weightDecay = null, double? epsilon = null, double? beta1 = null, double? beta2 = null)
    {
        switch (name.Trim().ToLowerInvariant())
        {
            case "adamw":
            {
                var d = new AdamWSettings();
                return new AdamWOptimizer(parameters, d with
                {
                    LearningRate = learningRate,
                    WeightDecay = weightDecay ?? d.WeightDecay,
                    Epsilon = epsilon ?? d.Epsilon,
                    Beta1 = beta1 ?? d.Beta1,
                    Beta2 = beta2 ?? d.Beta2,
                });
            }
            case "came":
            {
                var d = new CameSettings();
                return new CameOptimizer(parameters, d with
                {
                    LearningRate = learningRate,
                    WeightDecay = weightDecay ?? d.WeightDecay,
                    Epsilon1 = epsilon ?? d.Epsilon1,
                    Beta1 = beta1 ?? d.Beta1,
                    Beta2 = beta2 ?? d.Beta2,
                });
            }
            default:
                throw new ArgumentException($"unknown optimizer '{name}'; valid values: {string.Join(", ", Names)}");
        }
    }
}
