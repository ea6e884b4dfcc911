using PixArtLora.Diffusion;
using PixArtLora.Hub;
using PixArtLora.IO;
using PixArtLora.Lora;
using PixArtLora.Models.TextEncoder;
using PixArtLora.Models.Transformer;
using PixArtLora.Models.Vae;
using PixArtLora.Registry;
using static TorchSharp.torch;

namespace PixArtLora.Inference;

/// <summary>Options of <see cref="PixArtPipeline.FromModules"/>.</summary>
public sealed record PipelineModulesOptions
{
    /// <summary>Registry defaults (sampler, steps, guidance, token length); null uses diffusers' Σ defaults.</summary>
    public ModelVariant? Variant { get; init; }
    /// <summary>Creates the prompt encoder when prompts (rather than embeddings) are to be encoded; null if none.</summary>
    public Func<IPromptEncoder>? TextEncoder { get; init; }
    /// <summary>T5 token length (default the variant's, else 300).</summary>
    public int? MaxSequenceLength { get; init; }
    /// <summary>Name written into image metadata.</summary>
    public string ModelName { get; init; } = "PixArt";
    public VaeTiling? VaeTiling { get; init; }
    /// <summary>Dispose the transformer and VAE with the pipeline (default: the caller keeps ownership).</summary>
    public bool OwnsModules { get; init; }
}

public sealed partial class PixArtPipeline
{
    PixArtPipeline(PixArtTransformerConfig transformerConfig, AutoencoderKLConfig vaeConfig, SchedulerConfig scheduler,
        ModelVariant? variant, string modelName, int maxSequenceLength, IReadOnlyList<LoraSpec> loras, Device device,
        Func<PixArtTransformer2DModel> loadTransformer, Func<AutoencoderKL> loadVae, Func<IPromptEncoder>? loadTextEncoder,
        bool ownsModules, VaeTiling tiling)
    {
        if (maxSequenceLength < 1) throw new ArgumentOutOfRangeException(nameof(maxSequenceLength), maxSequenceLength, "max_sequence_length must be at least 1");
        TransformerConfig = transformerConfig;
        VaeConfig = vaeConfig;
        SchedulerConfig = scheduler;
        Variant = variant;
        ModelName = modelName;
        MaxSequenceLength = maxSequenceLength;
        _loras = loras.ToList();
        Device = device;
        _loadTransformer = loadTransformer;
        _loadVae = loadVae;
        _loadTextEncoder = loadTextEncoder;
        _ownsModules = ownsModules;
        VaeTiling = tiling;
    }

    /// <summary>
    /// A pipeline around modules the caller already holds — e.g. a trainer rendering validation images with the
    /// transformer it is training (LoRAs attached) and cached prompt features. The transformer is switched to eval
    /// mode while generating and back afterwards; nothing is disposed unless <see cref="PipelineModulesOptions.OwnsModules"/>.
    /// </summary>
    public static PixArtPipeline FromModules(PixArtTransformer2DModel transformer, AutoencoderKL vae, SchedulerConfig scheduler,
        PipelineModulesOptions? options = null)
    {
        options ??= new PipelineModulesOptions();
        var device = transformer.parameters().First().device;
        var pipeline = new PixArtPipeline(transformer.Config, vae.Config, scheduler, options.Variant, options.ModelName,
            options.MaxSequenceLength ?? options.Variant?.CaptionTokens ?? DefaultSequenceLength, Array.Empty<LoraSpec>(), device,
            () => transformer, () => vae, options.TextEncoder, options.OwnsModules, options.VaeTiling ?? VaeTiling.Default);
        pipeline._transformer = transformer;
        pipeline._vae = vae;
        return pipeline;
    }

    /// <summary>diffusers' PixArtSigmaPipeline default (α's is 120; registry variants carry their own).</summary>
    const int DefaultSequenceLength = 300;

    /// <summary>
    /// Locates and fetches every component of <paramref name="model"/> (registry id such as <c>sigma-1024-ms</c> or
    /// <c>tiny</c>, a local diffusers pipeline or transformer folder, or a Hub id), reads their configs, and checks the
    /// LoRA files against the transformer; weights load on first use (see the class remarks). Bad inputs — a missing
    /// LoRA file, a LoRA for another architecture, a T5 whose width is not the transformer's caption width — fail here.
    /// </summary>
    public static PixArtPipeline Load(string model, PipelineLoadOptions? options = null)
    {
        options ??= new PipelineLoadOptions();
        var log = options.Log ?? (_ => { });
        var device = options.Device ?? CPU;
        CheckDType(options.DType, device, "dtype");
        var textDevice = options.TextEncoderDevice ?? device;
        var textDType = options.TextEncoderDType ?? options.DType;
        CheckDType(textDType, textDevice, "text encoder dtype");
        foreach (var lora in options.Loras)
            if (!File.Exists(lora.Path) && !Directory.Exists(lora.Path))
                throw new FileNotFoundException($"LoRA file not found: {lora.Path}", lora.Path);
        if (options.Checkpoint is { } ck && !File.Exists(ck) && !Directory.Exists(ck))
            throw new FileNotFoundException($"checkpoint not found: {ck} (expected a transformer folder, a pipeline folder or a .safetensors file)", ck);

        var location = ModelLocator.Locate(model, options.ComponentsFrom, options.TinyModelsRoot);
        var fetch = options.Fetch ?? DefaultFetch;
        var (transformerConfig, weights) = LocateTransformer(location, options.Checkpoint, fetch);

        var vaeFolder = ModelLocator.Fetch(location.Require(PipelineComponent.Vae), fetch);
        var vaeConfig = AutoencoderKLConfig.Load(Path.Combine(vaeFolder, "config.json"));
        if (vaeConfig.LatentChannels != transformerConfig.InChannels)
            throw new InvalidDataException($"{vaeFolder}: the VAE has {vaeConfig.LatentChannels} latent channels, the transformer takes {transformerConfig.InChannels}");
        var scheduler = location.Scheduler is { } s
            ? SchedulerConfig.Load(ModelLocator.Fetch(s, fetch))
            : SchedulerConfig.Parse(TinyModels.SchedulerConfigJson, "diffusers' default DPMSolverMultistepScheduler config");

        Func<IPromptEncoder>? loadTextEncoder = null;
        int maxLength = options.MaxSequenceLength ?? location.Variant?.CaptionTokens ?? DefaultSequenceLength;
        if (location.TextEncoder is { } te && location.Tokenizer is { } tok)
        {
            string textFolder = ModelLocator.Fetch(te, fetch), tokenizerFolder = ModelLocator.Fetch(tok, fetch);
            var t5 = T5Config.Load(textFolder);
            if (transformerConfig.CaptionChannels is int width && t5.DModel != width)
                throw new InvalidDataException(
                    $"{textFolder}: the text encoder's d_model is {t5.DModel}, but the transformer expects {width}-d captions (caption_channels); use the text encoder it was trained with");
            var encoderOptions = new T5PromptEncoderOptions
            {
                MaxLength = maxLength, Device = textDevice, DType = textDType, OutputDevice = CPU,
                Preprocessing = PromptPreprocessing.Mode.LowerStrip,
            };
            loadTextEncoder = () => T5PromptEncoder.Load(textFolder, tokenizerFolder, encoderOptions);
        }

        var adapters = ReadLoras(options.Loras, weights, location.Variant, log);
        var vaeDType = options.DType == ScalarType.Float16 && vaeConfig.ForceUpcast ? ScalarType.Float32 : options.DType;
        PixArtPipeline? pipeline = null;
        pipeline = new PixArtPipeline(transformerConfig, vaeConfig, scheduler, location.Variant, location.Source, maxLength,
            options.Loras, device,
            () => LoadTransformer(pipeline!, transformerConfig, weights, adapters, device, options.DType),
            () => AutoencoderKL.Load(vaeFolder, device, vaeDType), loadTextEncoder, ownsModules: true,
            options.VaeTiling ?? VaeTiling.Default)
        {
            KeepTextEncoder = options.KeepTextEncoder,
        };
        log($"model {location.Source}: transformer {weights}, VAE {vaeFolder}, text encoder {location.TextEncoder?.ToString() ?? "none"}");
        return pipeline;
    }

    static string DefaultFetch(HubComponent component)
    {
        using var client = new HubClient(HubOptions.FromEnvironment());
        return client.GetFolder(component.Repo, component.Subfolder);
    }

    /// <summary>The transformer's config and the weights to load: the checkpoint when given, else the model's own.</summary>
    static (PixArtTransformerConfig Config, string Weights) LocateTransformer(ModelLocation location, string? checkpoint, Func<HubComponent, string> fetch)
    {
        if (checkpoint is not null && Directory.Exists(checkpoint))
        {
            string folder = File.Exists(Path.Combine(checkpoint, "transformer", "config.json")) ? Path.Combine(checkpoint, "transformer") : checkpoint;
            return (PixArtTransformerConfig.Load(Path.Combine(folder, "config.json")), folder);
        }
        PixArtTransformerConfig baseConfig;
        string? baseFolder = null;
        // A registry variant's config is known without downloading its weights (a checkpoint file replaces them).
        if (checkpoint is not null && location.Transformer.Hub is not null && location.Variant is { Transformer: not null } v)
            baseConfig = v.TransformerConfig;
        else
        {
            baseFolder = ModelLocator.Fetch(location.Transformer, fetch);
            baseConfig = PixArtTransformerConfig.Load(Path.Combine(baseFolder, "config.json"));
        }
        return (baseConfig, checkpoint ?? baseFolder!);
    }

    /// <summary>Reads every LoRA against the transformer's layout (header only), so a LoRA for another model fails before any weight loads.</summary>
    static List<(LoraSpec Spec, LoraWeights Weights)> ReadLoras(IReadOnlyList<LoraSpec> loras, string weights,
        ModelVariant? variant, Action<string> log)
    {
        var result = new List<(LoraSpec, LoraWeights)>();
        if (loras.Count == 0) return result;
        try
        {
            using var checkpoint = SafetensorsCheckpoint.Open(weights, "diffusion_pytorch_model");
            var catalog = LoraTargetCatalog.FromCheckpoint(checkpoint, $"the transformer in {weights}");
            foreach (var spec in loras)
            {
                var w = LoraFile.Read(spec.Path, catalog);
                result.Add((spec, w));
                foreach (var warning in w.Warnings) log($"warning: {warning}");
                if (TransformerFolder.BaseModelMismatch(w, variant) is { } mismatch) log($"warning: {mismatch}");
            }
            return result;
        }
        catch
        {
            foreach (var (_, w) in result) w.Dispose();
            throw;
        }
    }

    static PixArtTransformer2DModel LoadTransformer(PixArtPipeline pipeline, PixArtTransformerConfig config, string weights,
        List<(LoraSpec Spec, LoraWeights Weights)> adapters, Device device, ScalarType dtype)
    {
        var model = new PixArtTransformer2DModel(config, device, dtype);
        try
        {
            model.LoadWeights(weights);
            if (adapters.Count > 0)
            {
                var network = LoraNetwork.Attach(model);
                for (int i = 0; i < adapters.Count; i++)
                    network.LoadAdapter($"lora{i}", adapters[i].Weights, adapters[i].Spec.Scale, trainable: false, device: device);
                pipeline.LoraNetwork = network;
            }
            foreach (var p in model.parameters()) p.requires_grad = false;
            model.eval();
            return model;
        }
        catch { model.Dispose(); throw; }
        finally
        {
            foreach (var (_, w) in adapters) w.Dispose();
            adapters.Clear();
        }
    }

    static void CheckDType(ScalarType dtype, Device device, string what)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"{what} {dtype}: expected float32, bfloat16 or float16");
        if (dtype == ScalarType.Float16 && device.type == TorchSharp.DeviceType.CPU)
            throw new ArgumentException($"{what} float16 is only supported on CUDA (on the CPU it is unusably slow); use bf16 or fp32");
    }
}
