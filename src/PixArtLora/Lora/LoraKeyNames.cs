using System.Text.RegularExpressions;

namespace PixArtLora.Lora;

/// <summary>What one tensor of a LoRA file is.</summary>
internal enum LoraTensorRole { Down, Up, Alpha }

/// <summary>
/// The key spellings of the LoRA files in circulation, reduced to (module, role):
/// <list type="bullet">
/// <item>PEFT / diffusers: <c>…to_q.lora_A.weight</c> (A, [r, in]) and <c>…lora_B.weight</c> (B, [out, r]); PEFT's in-memory <c>lora_A.default.weight</c>;</item>
/// <item>kohya / ComfyUI / OneTrainer: <c>…lora_down.weight</c>, <c>…lora_up.weight</c>, <c>…alpha</c>;</item>
/// <item>old diffusers LoRACompatibleLinear: <c>…lora.down.weight</c>, <c>…lora.up.weight</c>.</item>
/// </list>
/// Module prefixes (<c>transformer.</c>, <c>base_model.model.</c>, <c>unet.base_model.model.</c>, <c>lora_transformer_</c>, …)
/// are stripped when resolving against a model, see <see cref="Prefixes"/>.
/// </summary>
internal static class LoraKeyNames
{
    static readonly (string Suffix, LoraTensorRole Role)[] Suffixes =
    {
        (".lora_A.weight", LoraTensorRole.Down),
        (".lora_B.weight", LoraTensorRole.Up),
        (".lora_down.weight", LoraTensorRole.Down),
        (".lora_up.weight", LoraTensorRole.Up),
        (".lora.down.weight", LoraTensorRole.Down),
        (".lora.up.weight", LoraTensorRole.Up),
        (".alpha", LoraTensorRole.Alpha),
    };

    // PEFT's in-memory names carry the adapter name: lora_A.<adapter>.weight.
    static readonly Regex NamedAdapter = new(@"^(?<module>.+)\.lora_(?<ab>[AB])\.(?<adapter>[^.]+)\.weight$", RegexOptions.CultureInvariant);

    /// <summary>
    /// Key prefixes of the known writers, longest first. One or several may precede the module name: diffusers'
    /// <c>save_lora_weights</c> writes <c>transformer.</c>; PEFT's <c>save_pretrained</c> <c>base_model.model.</c>; the official PixArt
    /// script passes PEFT's names to <c>StableDiffusionPipeline.save_lora_weights</c>, giving <c>unet.base_model.model.</c>;
    /// OneTrainer writes <c>lora_transformer_</c> and kohya-style tools <c>lora_unet_</c> with '_' for '.'; ComfyUI <c>diffusion_model.</c>.
    /// </summary>
    internal static readonly string[] Prefixes =
    {
        "unet.base_model.model.", "transformer.base_model.model.", "base_model.model.", "model.diffusion_model.", "diffusion_model.",
        "transformer.", "unet.", "lora_transformer_", "lora_unet_", "model.",
    };

    /// <summary>Text-encoder parts of a combined file: a PixArt LoRA applies to the transformer only.</summary>
    static readonly string[] TextEncoderPrefixes = { "text_encoder.", "text_encoder_2.", "lora_te_", "lora_te1_", "lora_te2_" };

    // Adapter kinds that are not plain LoRA: reading them as LoRA would silently compute something else.
    static readonly (string Marker, string What)[] Unsupported =
    {
        ("lora_magnitude_vector", "DoRA (weight-decomposed LoRA)"),
        (".dora_scale", "DoRA (weight-decomposed LoRA)"),
        (".hada_w1_a", "LyCORIS LoHa"), (".hada_w2_a", "LyCORIS LoHa"),
        (".lokr_w1", "LyCORIS LoKr"), (".lokr_w2", "LyCORIS LoKr"),
        (".lora_mid.weight", "LyCORIS LoCon (conv mid)"),
        (".oft_blocks", "OFT"), (".oft_diag", "OFT"),
        (".lora_B.bias", "LoRA with a bias on B (PEFT lora_bias)"), (".lora_up.bias", "LoRA with a bias on the up layer"),
        (".diff_b", "full bias differences"), (".diff", "full weight differences"),
    };

    /// <summary>Splits a file key into its module key (prefix still on) and role; null when the key is not a LoRA tensor.</summary>
    public static (string Module, LoraTensorRole Role)? Parse(string key, out string? unsupportedKind, out string? adapterName)
    {
        unsupportedKind = null;
        adapterName = null;
        foreach (var (marker, what) in Unsupported)
            if (key.Contains(marker, StringComparison.Ordinal) && (marker != ".diff" || key.EndsWith(".diff", StringComparison.Ordinal)))
            {
                unsupportedKind = what;
                return null;
            }
        foreach (var (suffix, role) in Suffixes)
            if (key.EndsWith(suffix, StringComparison.Ordinal) && key.Length > suffix.Length)
                return (key[..^suffix.Length], role);
        var m = NamedAdapter.Match(key);
        if (m.Success)
        {
            adapterName = m.Groups["adapter"].Value;
            return (m.Groups["module"].Value, m.Groups["ab"].Value == "A" ? LoraTensorRole.Down : LoraTensorRole.Up);
        }
        return null;
    }

    public static bool IsTextEncoderKey(string key) =>
        TextEncoderPrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal));

    /// <summary>The module key itself, then with each chain of known prefixes removed (most specific first).</summary>
    public static IEnumerable<string> WithoutPrefixes(string moduleKey)
    {
        yield return moduleKey;
        var seen = new HashSet<string> { moduleKey };
        var queue = new Queue<string>();
        queue.Enqueue(moduleKey);
        while (queue.Count > 0)
        {
            var k = queue.Dequeue();
            foreach (var p in Prefixes)
                if (k.StartsWith(p, StringComparison.Ordinal) && k.Length > p.Length && seen.Add(k[p.Length..]))
                {
                    yield return k[p.Length..];
                    queue.Enqueue(k[p.Length..]);
                }
        }
    }
}
