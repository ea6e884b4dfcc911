using System.Text.Json;
using System.Text.Json.Serialization;

namespace PixArtLora.Diffusion;

/// <summary>
/// A diffusers <c>scheduler/scheduler_config.json</c>. Every key is optional: a missing or null key means "the
/// sampler's own default", as diffusers' <c>from_config</c> does when one scheduler class reads another's config
/// (e.g. DDIM reading PixArt's DPM-Solver config keeps DDIM's own clip_sample default). Unknown keys are ignored.
/// </summary>
public sealed record SchedulerConfig
{
    /// <summary>A config with every key missing: each sampler's diffusers defaults.</summary>
    public static SchedulerConfig Empty { get; } = new();

    /// <summary>Where the config was read from, for error messages.</summary>
    [JsonIgnore] public string Source { get; init; } = "scheduler config";

    [JsonPropertyName("_class_name")] public string? ClassName { get; init; }
    [JsonPropertyName("num_train_timesteps")] public int? NumTrainTimesteps { get; init; }
    [JsonPropertyName("beta_start")] public double? BetaStart { get; init; }
    [JsonPropertyName("beta_end")] public double? BetaEnd { get; init; }
    [JsonPropertyName("beta_schedule")] public string? BetaSchedule { get; init; }
    [JsonPropertyName("trained_betas")] public double[]? TrainedBetas { get; init; }
    [JsonPropertyName("rescale_betas_zero_snr")] public bool? RescaleBetasZeroSnr { get; init; }
    [JsonPropertyName("prediction_type")] public string? PredictionType { get; init; }
    [JsonPropertyName("timestep_spacing")] public string? TimestepSpacing { get; init; }
    [JsonPropertyName("steps_offset")] public int? StepsOffset { get; init; }
    [JsonPropertyName("clip_sample")] public bool? ClipSample { get; init; }
    [JsonPropertyName("clip_sample_range")] public double? ClipSampleRange { get; init; }
    [JsonPropertyName("set_alpha_to_one")] public bool? SetAlphaToOne { get; init; }
    [JsonPropertyName("thresholding")] public bool? Thresholding { get; init; }
    [JsonPropertyName("dynamic_thresholding_ratio")] public double? DynamicThresholdingRatio { get; init; }
    [JsonPropertyName("sample_max_value")] public double? SampleMaxValue { get; init; }
    [JsonPropertyName("variance_type")] public string? VarianceType { get; init; }
    [JsonPropertyName("solver_order")] public int? SolverOrder { get; init; }
    [JsonPropertyName("algorithm_type")] public string? AlgorithmType { get; init; }
    [JsonPropertyName("solver_type")] public string? SolverType { get; init; }
    [JsonPropertyName("lower_order_final")] public bool? LowerOrderFinal { get; init; }
    [JsonPropertyName("euler_at_final")] public bool? EulerAtFinal { get; init; }
    [JsonPropertyName("final_sigmas_type")] public string? FinalSigmasType { get; init; }
    [JsonPropertyName("lambda_min_clipped")] public double? LambdaMinClipped { get; init; }
    [JsonPropertyName("use_karras_sigmas")] public bool? UseKarrasSigmas { get; init; }
    [JsonPropertyName("use_exponential_sigmas")] public bool? UseExponentialSigmas { get; init; }
    [JsonPropertyName("use_beta_sigmas")] public bool? UseBetaSigmas { get; init; }
    [JsonPropertyName("use_lu_lambdas")] public bool? UseLuLambdas { get; init; }
    [JsonPropertyName("interpolation_type")] public string? InterpolationType { get; init; }
    [JsonPropertyName("timestep_type")] public string? TimestepType { get; init; }
    [JsonPropertyName("sigma_min")] public double? SigmaMin { get; init; }
    [JsonPropertyName("sigma_max")] public double? SigmaMax { get; init; }
    [JsonPropertyName("predictor_order")] public int? PredictorOrder { get; init; }
    [JsonPropertyName("corrector_order")] public int? CorrectorOrder { get; init; }
    /// <summary>Keys diffusers marks as "default used"; they are treated as missing.</summary>
    [JsonPropertyName("_use_default_values")] public string[]? UseDefaultValues { get; init; }

    static readonly JsonSerializerOptions JsonOptions = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals | JsonNumberHandling.AllowReadingFromString,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>
    /// Reads a scheduler config from a .json file, a folder holding scheduler_config.json, or a model folder
    /// holding scheduler/scheduler_config.json.
    /// </summary>
    public static SchedulerConfig Load(string path)
    {
        string file = path;
        if (Directory.Exists(path))
        {
            file = Path.Combine(path, "scheduler_config.json");
            if (!File.Exists(file)) file = Path.Combine(path, "scheduler", "scheduler_config.json");
            if (!File.Exists(file))
                throw new FileNotFoundException($"{path}: no scheduler_config.json in this folder or in its scheduler/ subfolder", path);
        }
        else if (!File.Exists(file)) throw new FileNotFoundException($"scheduler config not found: {path}", path);
        return Parse(File.ReadAllText(file), file);
    }

    /// <summary>Parses scheduler config JSON (Python's NaN / Infinity / -Infinity literals are accepted).</summary>
    public static SchedulerConfig Parse(string json, string source = "scheduler config")
    {
        SchedulerConfig? config;
        try { config = JsonSerializer.Deserialize<SchedulerConfig>(PixArtLora.IO.PythonJson.QuoteFloatLiterals(json), JsonOptions); }
        catch (JsonException e)
        {
            throw new FormatException($"{source}: {(e.Path is { } p ? $"key {p}: " : "")}{e.Message}", e);
        }
        if (config == null) throw new FormatException($"{source}: expected a JSON object, found null");
        config = config with { Source = source };
        return config.UseDefaultValues is { Length: > 0 } keys ? config.WithKeysRemoved(keys) : config;
    }

    SchedulerConfig WithKeysRemoved(IEnumerable<string> keys)
    {
        // Round-trip through JSON so that the removal is by the published key names.
        var node = JsonSerializer.SerializeToNode(this with { UseDefaultValues = null }, JsonOptions)!.AsObject();
        foreach (var k in keys) node.Remove(k);
        return JsonSerializer.Deserialize<SchedulerConfig>(node, JsonOptions)! with { Source = Source };
    }

    /// <summary>An error naming this config, the key, what was found and what was expected.</summary>
    public ArgumentException Invalid(string key, string? found, string expected) =>
        new($"{Source}: {key} {(found == null ? "is missing" : $"\"{found}\"")} is not supported; expected {expected}");

    /// <summary>
    /// <paramref name="value"/> if set, else <paramref name="defaultValue"/>; throws naming the key and the valid
    /// values when the value is not one of <paramref name="allowed"/>.
    /// </summary>
    public string Choose(string key, string? value, string defaultValue, params string[] allowed)
    {
        var v = value ?? defaultValue;
        if (!allowed.Contains(v)) throw Invalid(key, v, "one of " + string.Join(", ", allowed));
        return v;
    }
}
