namespace PixArtLora.Diffusion;

/// <summary>
/// Which training timesteps a sampler visits. diffusers offers three spacings (linspace, leading, trailing; see
/// "Common Diffusion Noise Schedules and Sample Steps are Flawed", table 2) in two flavours: single-step schedulers
/// (DDIM, DDPM, Euler) place N points, multistep solvers (DPM-Solver, SA-Solver) place N + 1 and drop the last.
/// IDDPM respaces by section counts. All grids are returned in sampling order (noisiest first) unless stated.
/// </summary>
public static class TimestepGrid
{
    /// <summary>The spacings diffusers accepts for <c>timestep_spacing</c>.</summary>
    public static readonly string[] Spacings = { "linspace", "leading", "trailing" };

    /// <summary>DDIMScheduler / DDPMScheduler.set_timesteps: N integer timesteps, descending.</summary>
    public static long[] SingleStep(string spacing, int trainTimesteps, int steps, int stepsOffset) =>
        SingleStepValues(spacing, trainTimesteps, steps, stepsOffset, round: true).Select(v => (long)v).ToArray();

    /// <summary>
    /// EulerDiscreteScheduler.set_timesteps: N float timesteps, descending; linspace is not rounded and every value
    /// is stored in float32.
    /// </summary>
    public static double[] SingleStepFloat(string spacing, int trainTimesteps, int steps, int stepsOffset) =>
        SingleStepValues(spacing, trainTimesteps, steps, stepsOffset, round: false).Select(v => (double)(float)v).ToArray();

    static double[] SingleStepValues(string spacing, int t, int n, int offset, bool round)
    {
        switch (spacing)
        {
            case "linspace":
            {
                var v = NumpyMath.Linspace(0, t - 1, n);
                if (round) v = v.Select(NumpyMath.Round).ToArray();
                return v.Reverse().ToArray();
            }
            case "leading":
            {
                int ratio = t / n;
                return Enumerable.Range(0, n).Select(i => (double)(i * ratio)).Reverse().Select(v => v + offset).ToArray();
            }
            case "trailing":
            {
                double ratio = (double)t / n;
                return NumpyMath.Arange(t, 0, -ratio).Select(v => NumpyMath.Round(v) - 1).ToArray();
            }
            default: throw new ArgumentException($"timestep_spacing \"{spacing}\" is not supported; expected one of {string.Join(", ", Spacings)}");
        }
    }

    /// <summary>
    /// DPMSolverMultistepScheduler / SASolverScheduler.set_timesteps: N integer timesteps, descending, from a grid of
    /// N + 1 points over [0, <paramref name="lastTimestep"/>) whose final point (0) is dropped.
    /// </summary>
    public static long[] Multistep(string spacing, int trainTimesteps, int lastTimestep, int steps, int stepsOffset)
    {
        IEnumerable<double> values = spacing switch
        {
            "linspace" => NumpyMath.Linspace(0, lastTimestep - 1, steps + 1).Select(NumpyMath.Round).Reverse().SkipLast(1),
            "leading" => Enumerable.Range(0, steps + 1).Select(i => (double)(i * (lastTimestep / (steps + 1))))
                .Reverse().SkipLast(1).Select(v => v + stepsOffset),
            "trailing" => NumpyMath.Arange(lastTimestep, 0, -(double)trainTimesteps / steps).Select(v => NumpyMath.Round(v) - 1),
            _ => throw new ArgumentException($"timestep_spacing \"{spacing}\" is not supported; expected one of {string.Join(", ", Spacings)}"),
        };
        return values.Select(v => (long)v).ToArray();
    }

    /// <summary>
    /// IDDPM's space_timesteps: which original timesteps a respaced process keeps, ascending. <paramref name="respacing"/>
    /// is "N" (N evenly spread steps), "a,b,c" (the range cut into equal sections, a steps from the first, ...), or
    /// "ddimN" (the integer stride giving exactly N steps).
    /// </summary>
    public static int[] IddpmRespacing(int trainTimesteps, string respacing)
    {
        respacing = respacing.Trim();
        if (respacing.StartsWith("ddim", StringComparison.Ordinal))
        {
            if (!int.TryParse(respacing.AsSpan(4), out int desired) || desired <= 0)
                throw new ArgumentException($"IDDPM respacing \"{respacing}\": expected ddimN with N a positive integer");
            for (int stride = 1; stride < trainTimesteps; stride++)
                if ((trainTimesteps + stride - 1) / stride == desired)
                    return Enumerable.Range(0, desired).Select(k => k * stride).ToArray();
            throw new ArgumentException($"IDDPM respacing \"{respacing}\": cannot make exactly {desired} steps from {trainTimesteps} with an integer stride");
        }
        var counts = respacing.Split(',').Select(s => int.TryParse(s.Trim(), out int c) && c > 0 ? c
            : throw new ArgumentException($"IDDPM respacing \"{respacing}\": expected positive step counts separated by commas, or ddimN")).ToArray();
        int sizePer = trainTimesteps / counts.Length, extra = trainTimesteps % counts.Length;
        int start = 0;
        var kept = new SortedSet<int>();
        for (int i = 0; i < counts.Length; i++)
        {
            int size = sizePer + (i < extra ? 1 : 0);
            if (size < counts[i])
                throw new ArgumentException($"IDDPM respacing \"{respacing}\": cannot take {counts[i]} steps from a section of {size} timesteps");
            double stride = counts[i] <= 1 ? 1 : (size - 1.0) / (counts[i] - 1);
            double cur = 0;
            for (int k = 0; k < counts[i]; k++) { kept.Add(start + (int)NumpyMath.Round(cur)); cur += stride; }
            start += size;
        }
        return kept.ToArray();
    }
}
