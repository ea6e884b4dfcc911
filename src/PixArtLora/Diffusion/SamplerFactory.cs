namespace PixArtLora.Diffusion;

/// <summary>Sampler settings that are not part of a diffusers scheduler config.</summary>
public sealed record SamplerOptions
{
    /// <summary>DDIM eta (0 = deterministic).</summary>
    public double Eta { get; init; }
    /// <summary>DDIM: recompute eps from the clipped x_0.</summary>
    public bool DdimUseClippedModelOutput { get; init; }
    /// <summary>Euler churn (0 = deterministic).</summary>
    public double EulerSChurn { get; init; }
    /// <summary>Euler churns only where s_tmin ≤ sigma ≤ s_tmax.</summary>
    public double EulerSTmin { get; init; }
    /// <summary>Euler churns only where s_tmin ≤ sigma ≤ s_tmax.</summary>
    public double EulerSTmax { get; init; } = double.PositiveInfinity;
    /// <summary>Scale of Euler's churn noise.</summary>
    public double EulerSNoise { get; init; } = 1.0;
    /// <summary>IDDPM: clamp the predicted x_0 to [-1, 1] (official inference: false).</summary>
    public bool IddpmClipDenoised { get; init; }
    /// <summary>IDDPM respacing string ("N", "a,b,c" or "ddimN") overriding the step count.</summary>
    public string? IddpmRespacing { get; init; }
    /// <summary>SA-Solver noise scale tau(timestep); null = diffusers' default (1 on [200, 800], else 0).</summary>
    public Func<double, double>? SaSolverTau { get; init; }
}

/// <summary>Creates samplers by name or from a diffusers scheduler config's class name.</summary>
public static class SamplerFactory
{
    /// <summary>The accepted sampler names (aliases included).</summary>
    public static readonly IReadOnlyList<string> Names = new[] { "dpm", "dpm-solver", "ddim", "ddpm", "euler", "sa-solver", "iddpm" };

    static readonly Dictionary<string, string> ClassToName = new()
    {
        ["DPMSolverMultistepScheduler"] = "dpm-solver",
        ["DDIMScheduler"] = "ddim",
        ["DDPMScheduler"] = "ddpm",
        ["EulerDiscreteScheduler"] = "euler",
        ["SASolverScheduler"] = "sa-solver",
    };

    /// <summary>
    /// A sampler by <paramref name="name"/> (dpm | dpm-solver | ddim | ddpm | euler | sa-solver | iddpm, case-insensitive)
    /// for <paramref name="steps"/> steps. <paramref name="config"/> is a diffusers scheduler config (e.g. the model's
    /// scheduler/scheduler_config.json, which for PixArt describes DPM-Solver); like diffusers' from_config, each
    /// sampler takes the keys it understands and its own defaults for the rest. Throws for an unknown name, fewer than
    /// 1 step, or more steps than training timesteps, naming the valid values.
    /// </summary>
    public static ISampler Create(string name, int steps, SchedulerConfig? config = null, SamplerOptions? options = null)
    {
        options ??= new SamplerOptions();
        string key = (name ?? "").Trim().ToLowerInvariant();
        if (!Names.Contains(key))
            throw new ArgumentException($"unknown sampler \"{name}\"; expected one of {string.Join(", ", Names)}", nameof(name));
        if (key == "iddpm" && options.IddpmRespacing is { } respacing)
            return new IddpmSampler(respacing, config, options.IddpmClipDenoised);
        SamplerBase.CheckStepCount(key, steps, config?.NumTrainTimesteps ?? 1000);
        return key switch
        {
            "dpm" or "dpm-solver" => new DpmSolverMultistepSampler(steps, config, key),
            "ddim" => new DdimSampler(steps, config, options.Eta, options.DdimUseClippedModelOutput),
            "ddpm" => new DdpmSampler(steps, config),
            "euler" => new EulerDiscreteSampler(steps, config)
            {
                SChurn = options.EulerSChurn, STmin = options.EulerSTmin, STmax = options.EulerSTmax, SNoise = options.EulerSNoise,
            },
            "sa-solver" => new SaSolverSampler(steps, config, options.SaSolverTau),
            _ => new IddpmSampler(steps, config, options.IddpmClipDenoised),
        };
    }

    /// <summary>
    /// The sampler a diffusers config names in <c>_class_name</c> (DPMSolverMultistepScheduler, DDIMScheduler,
    /// DDPMScheduler, EulerDiscreteScheduler, SASolverScheduler).
    /// </summary>
    public static ISampler FromConfig(SchedulerConfig config, int steps, SamplerOptions? options = null)
    {
        if (config.ClassName is not { } cls || !ClassToName.TryGetValue(cls, out var name))
            throw config.Invalid("_class_name", config.ClassName, "one of " + string.Join(", ", ClassToName.Keys));
        return Create(name, steps, config, options);
    }

    /// <summary>The sampler name for a diffusers scheduler class name, or null if it has none.</summary>
    public static string? NameForClass(string className) => ClassToName.GetValueOrDefault(className);
}
