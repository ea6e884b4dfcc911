using System.Security.Cryptography;
using System.Text;
using PixArtLora.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace PixArtLora.Models.Vae;

/// <summary>
/// diffusers' <c>AutoencoderKL</c> (autoencoders/autoencoder_kl.py, v0.31): the VAE of both PixArt-α (SD
/// <c>sd-vae-ft-ema</c>) and PixArt-Σ (SDXL VAE). Its parameters carry diffusers' key names and are frozen.
/// <para>Images are [B, in_channels, H, W] in [-1, 1]; latents are [B, latent_channels, H/8, W/8] <b>unscaled</b>:
/// multiplying by <see cref="AutoencoderKLConfig.ScalingFactor"/> (after encoding) and dividing by it (before decoding)
/// is the pipeline's and trainer's job.</para>
/// <para>Precision: float32 or bfloat16. The SDXL VAE overflows in float16 (its activations exceed 65504 and the image
/// turns to NaN/black), which is what <c>force_upcast: true</c> in its config says; such a VAE refuses float16.</para>
/// <para>Large inputs are tiled according to <see cref="Tiling"/> so that memory stays bounded by the tile size.</para>
/// </summary>
public sealed class AutoencoderKL : nn.Module<Tensor, Tensor>
{
    /// <summary>Base name of the weights file in a diffusers VAE folder.</summary>
    public const string WeightsBaseName = "diffusion_pytorch_model";

#pragma warning disable IDE1006 // Hugging Face key names
    readonly VaeEncoder encoder;
    readonly VaeDecoder decoder;
    readonly VaeConv2d? quant_conv;
    readonly VaeConv2d? post_quant_conv;
#pragma warning restore IDE1006

    public AutoencoderKLConfig Config { get; }

    /// <summary>The dtype of the parameters and of every output; inputs are cast to it.</summary>
    public ScalarType DType => parameters().First().dtype;

    /// <summary>The device the parameters live on; inputs are moved to it.</summary>
    public Device Device => parameters().First().device;

    /// <summary>When encode/decode split their input into tiles. Defaults to <see cref="VaeTiling.Default"/>.</summary>
    public VaeTiling Tiling { get; set; } = VaeTiling.Default;

    /// <summary>Builds the model with freshly initialised (random) weights on <paramref name="device"/> in <paramref name="dtype"/> (float32 by default).</summary>
    public AutoencoderKL(AutoencoderKLConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(AutoencoderKL))
    {
        config.Validate();
        Config = config;
        device ??= CPU;
        var type = dtype ?? ScalarType.Float32;
        CheckDType(config, type);
        encoder = new VaeEncoder(config, device, type);
        decoder = new VaeDecoder(config, device, type);
        if (config.UseQuantConv)
            quant_conv = new VaeConv2d(2 * config.LatentChannels, 2 * config.LatentChannels, 1, device: device, dtype: type);
        if (config.UsePostQuantConv)
            post_quant_conv = new VaeConv2d(config.LatentChannels, config.LatentChannels, 1, device: device, dtype: type);
        RegisterComponents();
        // This project never trains the VAE; frozen parameters keep autograd from recording its activations.
        foreach (var p in parameters()) p.requires_grad = false;
        eval();
    }

    /// <summary>
    /// Loads a diffusers VAE folder (<c>config.json</c> + <c>diffusion_pytorch_model.safetensors</c>, sharded or not), or a
    /// model folder with such a <c>vae/</c> subfolder. Strict: every parameter must be present with its shape and nothing
    /// else may be in the file. Weights saved with diffusers' old attention names (<c>query/key/value/proj_attn</c>) load too.
    /// </summary>
    public static AutoencoderKL Load(string path, Device? device = null, ScalarType? dtype = null)
    {
        string folder = path;
        if (Directory.Exists(path) && !File.Exists(Path.Combine(path, "config.json")) && File.Exists(Path.Combine(path, "vae", "config.json")))
            folder = Path.Combine(path, "vae");
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"VAE folder not found: {folder}");
        var config = AutoencoderKLConfig.Load(Path.Combine(folder, "config.json"));
        var vae = new AutoencoderKL(config, device, dtype);
        try
        {
            using var checkpoint = SafetensorsCheckpoint.Open(folder, WeightsBaseName);
            checkpoint.LoadInto(vae, strict: true, aliases: vae.DeprecatedAttentionAliases());
        }
        catch { vae.Dispose(); throw; }
        return vae;
    }

    /// <summary>Writes config.json and diffusion_pytorch_model.safetensors into <paramref name="folder"/>, each atomically.</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        Config.Save(Path.Combine(folder, "config.json"));
        var state = state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        SafetensorsWriter.Save(Path.Combine(folder, WeightsBaseName + ".safetensors"), state);
    }

    /// <summary>The posterior q(z | images). Tiled when <see cref="Tiling"/> applies to the image size.</summary>
    public DiagonalGaussianDistribution Encode(Tensor images) => Encode(images, Tiling);

    /// <summary>The posterior q(z | images) under the given tiling settings (<see cref="VaeTiling.Off"/> for one piece).</summary>
    public DiagonalGaussianDistribution Encode(Tensor images, VaeTiling tiling)
    {
        using var scope = NewDisposeScope();
        var moments = EncodeMoments(images, tiling, null);
        return DiagonalGaussianDistribution.FromMoments(moments).MoveToOuterDisposeScope();
    }

    /// <summary>Images [B, out_channels, H·8, W·8] (roughly in [-1, 1]) from unscaled latents. Tiled when <see cref="Tiling"/> applies.</summary>
    public Tensor Decode(Tensor latents) => Decode(latents, Tiling);

    /// <summary>Decodes under the given tiling settings (<see cref="VaeTiling.Off"/> for one piece).</summary>
    public Tensor Decode(Tensor latents, VaeTiling tiling) => DecodeCore(latents, tiling, null);

    /// <summary>diffusers' forward with <c>sample_posterior=False</c>: decode the posterior mean.</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var posterior = Encode(images);
        return Decode(posterior.Mean).MoveToOuterDisposeScope();
    }

    /// <summary>Encoder (+ quant_conv) output: 2·latent_channels moments. <paramref name="tap"/> sees intermediates
    /// ("encoder.mid_block", "encoder") when the input is not tiled.</summary>
    internal Tensor EncodeMoments(Tensor images, VaeTiling tiling, Action<string, Tensor>? tap)
    {
        CheckInput(images, Config.InChannels, "images");
        CheckDType(Config, DType);
        using var scope = NewDisposeScope();
        var x = images.to(DType, Device);
        long h = x.shape[2], w = x.shape[3];
        Tensor moments;
        if (tiling.AppliesTo(h, w, Config))
        {
            var (tile, stride, blend) = tiling.LatentGeometry(Config);
            int s = Config.SpatialScaleFactor;
            moments = VaeTiling.Stitch(x, tile * s, stride * s, stride, blend, EncodeTile);
        }
        else
        {
            var enc = encoder.Forward(x, tap is null ? null : (name, t) => tap("encoder." + name, t));
            tap?.Invoke("encoder", enc);
            moments = quant_conv is null ? enc : quant_conv.call(enc);
        }
        return moments.MoveToOuterDisposeScope();
    }

    Tensor EncodeTile(Tensor tile)
    {
        using var scope = NewDisposeScope();
        var enc = encoder.call(tile);
        return (quant_conv is null ? enc : quant_conv.call(enc)).MoveToOuterDisposeScope();
    }

    /// <summary>Decode; <paramref name="tap"/> sees "post_quant_conv" and "decoder.mid_block" when the input is not tiled.</summary>
    internal Tensor DecodeCore(Tensor latents, VaeTiling tiling, Action<string, Tensor>? tap)
    {
        CheckInput(latents, Config.LatentChannels, "latents");
        CheckDType(Config, DType);
        using var scope = NewDisposeScope();
        var z = latents.to(DType, Device);
        int s = Config.SpatialScaleFactor;
        Tensor result;
        if (tiling.AppliesTo(z.shape[2] * s, z.shape[3] * s, Config))
        {
            var (tile, stride, blend) = tiling.LatentGeometry(Config);
            result = VaeTiling.Stitch(z, tile, stride, stride * s, blend * s, DecodeTile);
        }
        else
        {
            var input = post_quant_conv is null ? z : post_quant_conv.call(z);
            tap?.Invoke("post_quant_conv", input);
            result = decoder.Forward(input, tap is null ? null : (name, t) => tap("decoder." + name, t));
        }
        return result.MoveToOuterDisposeScope();
    }

    Tensor DecodeTile(Tensor tile)
    {
        using var scope = NewDisposeScope();
        var input = post_quant_conv is null ? tile : post_quant_conv.call(tile);
        return decoder.call(input).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A SHA-256 over the config, the dtype and every parameter's name, shape and bytes: two models with the same
    /// identity produce the same latents. Used to key cached latents; reads all weights once (≈0.3 s for the SDXL VAE).
    /// </summary>
    public string ComputeIdentity()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(Config.ToJson()));
        sha.AppendData(Encoding.UTF8.GetBytes($"|dtype={DType}|"));
        using var noGrad = no_grad();
        foreach (var (name, tensor) in state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes($"{name}[{string.Join(",", tensor.shape)}]"));
            using var host = tensor.detach().cpu().contiguous();
            sha.AppendData(host.bytes);
        }
        return Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
    }

    /// <summary>Maps our attention keys to the names diffusers used before 0.14 (it converts them on load the same way).</summary>
    Dictionary<string, string> DeprecatedAttentionAliases()
    {
        var renames = new (string Now, string Old)[] { (".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.") };
        var aliases = new Dictionary<string, string>();
        foreach (var (key, _) in state_dict())
            foreach (var (now, old) in renames)
                if (key.Contains(".attentions.") && key.Contains(now)) aliases[key] = key.Replace(now, old);
        return aliases;
    }

    static void CheckDType(AutoencoderKLConfig config, ScalarType dtype)
    {
        if (dtype == ScalarType.Float16 && config.ForceUpcast)
            throw new ArgumentException(
                "this VAE's config sets force_upcast: true, so it must not run in float16 (the SDXL VAE overflows there and decodes NaN/black images); " +
                "use bfloat16 or float32, or a VAE fine-tuned for float16 whose config sets force_upcast: false");
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
            throw new ArgumentException($"VAE dtype {dtype} is not a floating-point type; use float32 or bfloat16");
    }

    static void CheckInput(Tensor t, int channels, string what)
    {
        if (t.dim() != 4 || t.shape[1] != channels)
            throw new ArgumentException($"VAE {what} must be [batch, {channels}, height, width], got [{string.Join(", ", t.shape)}]");
        if (!t.is_floating_point()) throw new ArgumentException($"VAE {what} must be floating point, got {t.dtype}");
    }
}
