using PixArtLora.Diffusion;
using PixArtLora.Registry;

namespace PixArtLora.Inference;

/// <summary>
/// The sampler, step count and guidance scale of a generation, with unset values filled from the model's registry
/// defaults (DPM-Solver++ 20 steps, IDDPM 100, SA-Solver 25, guidance 4.5) as the official script and diffusers do.
/// </summary>
/// <param name="Sampler">Canonical sampler name (dpm-solver, ddim, ddpm, euler, sa-solver, iddpm).</param>
/// <param name="Steps">Number of model evaluations per image (×2 rows under guidance).</param>
/// <param name="GuidanceScale">Classifier-free guidance scale; ≤ 1 turns guidance off (diffusers' rule).</param>
public sealed record SamplingChoice(string Sampler, int Steps, double GuidanceScale)
{
    /// <summary>Used when neither the request nor a registry variant says otherwise.</summary>
    public static SamplerDefaults FallbackDefaults { get; } = new("dpm-solver", 20, 4.5);

    /// <summary>True when the unconditional branch is evaluated (guidance scale above 1, as in diffusers).</summary>
    public bool UsesGuidance => GuidanceScale > 1.0;

    /// <summary>
    /// Resolves the user's choices. Throws, naming the valid values, for an unknown sampler or a step count outside
    /// 1..1000, before anything is loaded.
    /// </summary>
    public static SamplingChoice Resolve(string? sampler, int? steps, double? guidanceScale, SamplerDefaults? defaults)
    {
        defaults ??= FallbackDefaults;
        string name = Canonical(sampler ?? defaults.Sampler);
        int n = steps ?? defaults.StepsFor(name);
        SamplerBase.CheckStepCount(name, n, 1000);
        double g = guidanceScale ?? defaults.GuidanceScale;
        if (double.IsNaN(g) || double.IsInfinity(g)) throw new ArgumentException($"guidance scale {g} is not a finite number");
        return new SamplingChoice(name, n, g);
    }

    /// <summary>The factory name for <paramref name="sampler"/> ("dpm" → "dpm-solver"), or an error listing the valid names.</summary>
    public static string Canonical(string sampler)
    {
        string key = sampler.Trim().ToLowerInvariant();
        if (!SamplerFactory.Names.Contains(key))
            throw new ArgumentException($"unknown sampler \"{sampler}\"; expected one of {string.Join(", ", SamplerFactory.Names)}");
        return key == "dpm" ? "dpm-solver" : key;
    }

    /// <summary>The name image viewers know the sampler by (AUTOMATIC1111's infotext names where one exists).</summary>
    public string DisplayName => Sampler switch
    {
        "dpm-solver" => "DPM++ 2M",
        "ddim" => "DDIM",
        "ddpm" => "DDPM",
        "euler" => "Euler",
        "sa-solver" => "SA-Solver",
        "iddpm" => "IDDPM",
        _ => Sampler,
    };
}
