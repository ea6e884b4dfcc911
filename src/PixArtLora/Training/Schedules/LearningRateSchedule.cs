using System.Globalization;
using System.Text.Json.Nodes;

namespace PixArtLora.Training.Schedules;

/// <summary>
/// The learning-rate schedules of diffusers' <c>get_scheduler</c> (diffusers/optimization.py), as pure
/// functions of the optimizer step: the learning rate of update number <c>step</c> (0 for the first update)
/// is <c>BaseLearningRate × Factor(step)</c>, which is what diffusers' LambdaLR gives when the scheduler is
/// stepped once per optimizer update. Being a function of the step, its whole state is its settings plus the
/// step counter the checkpoint keeps anyway.
/// </summary>
public sealed class LearningRateSchedule
{
    /// <summary>The accepted values of <c>--lr_scheduler</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = new[]
    {
        "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial", "piecewise_constant",
    };

    /// <summary>Creates a schedule, checking the name and the arguments it needs.</summary>
    /// <param name="name">One of <see cref="Names"/> (case-insensitive).</param>
    /// <param name="baseLearningRate">The learning rate the factors multiply (<c>--learning_rate</c>).</param>
    /// <param name="warmupSteps">Linear warmup from 0 over this many updates (ignored by <c>constant</c>).</param>
    /// <param name="totalSteps">Number of optimizer updates of the run (linear, cosine*, polynomial).</param>
    /// <param name="numCycles">Hard restarts of <c>cosine_with_restarts</c> (diffusers default 1). <c>cosine</c>
    /// always uses half a period, as <c>get_scheduler</c> does not pass this through to it.</param>
    /// <param name="power">Exponent of <c>polynomial</c> (default 1, linear decay).</param>
    /// <param name="endLearningRate">Learning rate <c>polynomial</c> decays to (diffusers' lr_end, 1e-7).</param>
    /// <param name="stepRules">Rules of <c>piecewise_constant</c>, e.g. <c>1:10,0.1:20,0.01</c>.</param>
    public static LearningRateSchedule Create(string name, double baseLearningRate, long warmupSteps = 0, long totalSteps = 0,
        int numCycles = 1, double power = 1.0, double endLearningRate = 1e-7, string? stepRules = null)
    {
        string n = name.Trim().ToLowerInvariant();
        if (!Names.Contains(n))
            throw new ArgumentException($"unknown learning-rate scheduler '{name}'; valid values: {string.Join(", ", Names)}");
        if (baseLearningRate < 0) throw new ArgumentException($"learning rate must be >= 0, got {baseLearningRate}");
        if (warmupSteps < 0) throw new ArgumentException($"lr_warmup_steps must be >= 0, got {warmupSteps}");
        bool needsTotal = n is "linear" or "cosine" or "cosine_with_restarts" or "polynomial";
        if (needsTotal && totalSteps <= 0)
            throw new ArgumentException($"lr scheduler '{n}' needs the total number of training steps (> 0), got {totalSteps}");
        if (n == "polynomial")
        {
            if (!(baseLearningRate > endLearningRate))
                throw new ArgumentException($"lr scheduler 'polynomial': end learning rate ({endLearningRate}) must be smaller than the learning rate ({baseLearningRate})");
            if (totalSteps <= warmupSteps)
                throw new ArgumentException($"lr scheduler 'polynomial': total steps ({totalSteps}) must exceed warmup steps ({warmupSteps})");
        }
        if (n == "piecewise_constant" && string.IsNullOrWhiteSpace(stepRules))
            throw new ArgumentException("lr scheduler 'piecewise_constant' needs step rules such as '1:10,0.1:20,0.01'");
        var rules = n == "piecewise_constant" ? PiecewiseRules.Parse(stepRules!) : null;
        return new LearningRateSchedule(n, baseLearningRate, warmupSteps, totalSteps, numCycles, power, endLearningRate, stepRules, rules);
    }

    readonly PiecewiseRules? _rules;

    LearningRateSchedule(string name, double baseLr, long warmup, long total, int cycles, double power, double endLr,
        string? stepRules, PiecewiseRules? rules)
    {
        Name = name; BaseLearningRate = baseLr; WarmupSteps = warmup; TotalSteps = total; NumCycles = cycles;
        Power = power; EndLearningRate = endLr; StepRules = stepRules; _rules = rules;
    }

    public string Name { get; }
    public double BaseLearningRate { get; }
    public long WarmupSteps { get; }
    public long TotalSteps { get; }
    public int NumCycles { get; }
    public double Power { get; }
    public double EndLearningRate { get; }
    public string? StepRules { get; }

    /// <summary>The learning rate of optimizer update <paramref name="step"/> (0-based).</summary>
    public double LearningRateAt(long step) => BaseLearningRate * Factor(step);

    /// <summary>The multiplier of the base learning rate at update <paramref name="step"/> (diffusers' lr_lambda).</summary>
    public double Factor(long step)
    {
        if (Name == "constant") return 1.0;
        if (Name == "piecewise_constant") return _rules!.Factor(step);
        if (step < WarmupSteps) return (double)step / Math.Max(1, WarmupSteps);
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        switch (Name)
        {
            case "constant_with_warmup":
                return 1.0;
            case "linear":
                return Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps));
            case "cosine":
                return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * 0.5 * 2.0 * progress)));
            case "cosine_with_restarts":
                if (progress >= 1.0) return 0.0;
                return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * ((NumCycles * progress) % 1.0))));
            case "polynomial":
                if (step > TotalSteps) return EndLearningRate / BaseLearningRate;
                double remaining = 1.0 - (double)(step - WarmupSteps) / (TotalSteps - WarmupSteps);
                double decayed = (BaseLearningRate - EndLearningRate) * Math.Pow(remaining, Power) + EndLearningRate;
                return decayed / BaseLearningRate;
            default:
                throw new InvalidOperationException($"schedule '{Name}' has no formula");
        }
    }

    /// <summary>The settings, for the checkpoint manifest.</summary>
    public JsonObject ToJson() => new()
    {
        ["name"] = Name,
        ["base_learning_rate"] = BaseLearningRate,
        ["warmup_steps"] = WarmupSteps,
        ["total_steps"] = TotalSteps,
        ["num_cycles"] = NumCycles,
        ["power"] = Power,
        ["end_learning_rate"] = EndLearningRate,
        ["step_rules"] = StepRules,
    };

    /// <summary>Rebuilds a schedule written by <see cref="ToJson"/>.</summary>
    public static LearningRateSchedule FromJson(JsonObject json, string source = "lr scheduler state")
    {
        T Get<T>(string key) => json[key] is { } v ? v.GetValue<T>() : throw new InvalidDataException($"{source}: field '{key}' is missing");
        return Create(Get<string>("name"), Get<double>("base_learning_rate"), Get<long>("warmup_steps"), Get<long>("total_steps"),
            Get<int>("num_cycles"), Get<double>("power"), Get<double>("end_learning_rate"), json["step_rules"]?.GetValue<string>());
    }

    /// <summary>Whether two schedules give the same learning rate at every step.</summary>
    public bool SameSettingsAs(LearningRateSchedule other) => ToJson().ToJsonString() == other.ToJson().ToJsonString();

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name} (lr {BaseLearningRate:G4}, warmup {WarmupSteps}, total {TotalSteps})");

    /// <summary>diffusers' piecewise_constant rules "f1:s1,f2:s2,...,f_last": factor f_i before step s_i.</summary>
    sealed class PiecewiseRules
    {
        readonly List<(long Until, double Factor)> _steps;
        readonly double _last;

        PiecewiseRules(List<(long, double)> steps, double last) { _steps = steps; _last = last; }

        public static PiecewiseRules Parse(string rules)
        {
            var parts = rules.Split(',', StringSplitOptions.TrimEntries);
            var steps = new List<(long, double)>();
            foreach (var part in parts[..^1])
            {
                var kv = part.Split(':');
                if (kv.Length != 2 || !double.TryParse(kv[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double f)
                    || !long.TryParse(kv[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out long s))
                    throw new ArgumentException($"lr step rule '{part}' in '{rules}': expected factor:step, e.g. 0.1:20");
                steps.Add((s, f));
            }
            if (!double.TryParse(parts[^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double last))
                throw new ArgumentException($"lr step rules '{rules}': the last entry '{parts[^1]}' must be a factor, e.g. 0.01");
            steps.Sort((a, b) => a.Item1.CompareTo(b.Item1));
            return new PiecewiseRules(steps, last);
        }

        public double Factor(long step)
        {
            foreach (var (until, factor) in _steps)
                if (step < until) return factor;
            return _last;
        }
    }
}
