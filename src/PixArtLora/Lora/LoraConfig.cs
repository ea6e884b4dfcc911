namespace PixArtLora.Lora;

/// <summary>How a new adapter's down-projection A is initialised (B always starts at zero, so a fresh adapter changes nothing).</summary>
public enum LoraInit
{
    /// <summary>PEFT's default (<c>init_lora_weights=True</c>): Kaiming-uniform with a = √5, i.e. U(−1/√in, 1/√in).</summary>
    KaimingUniform,

    /// <summary>PEFT's <c>"gaussian"</c>, used by the official PixArt LoRA script: N(0, (1/r)²).</summary>
    Gaussian,
}

/// <summary>Settings of one new adapter.</summary>
public sealed record LoraConfig
{
    /// <summary>Rank r of the update B·A.</summary>
    public int Rank { get; init; } = 16;

    /// <summary>lora_alpha; the update is scaled by alpha / r (rsLoRA: alpha / √r).</summary>
    public double Alpha { get; init; } = 16;

    /// <summary>Which Linear modules get the adapter.</summary>
    public LoraTargets Targets { get; init; } = LoraTargets.Attention;

    /// <summary>
    /// Dropout applied to the adapter's input during training (PEFT's lora_dropout). With gradient checkpointing the
    /// recomputed forward draws a new mask, so gradients would not match the loss: keep 0 there (PixArt's own dropout is 0).
    /// </summary>
    public double Dropout { get; init; }

    /// <summary>Rank-stabilised LoRA: scale alpha / √r instead of alpha / r.</summary>
    public bool UseRsLora { get; init; }

    public LoraInit Init { get; init; } = LoraInit.KaimingUniform;

    /// <summary>Seed of the A initialisation, so that runs repeat exactly.</summary>
    public long Seed { get; init; } = 0;

    /// <summary>The factor in front of B·A.</summary>
    public double Scale => ScaleOf(Alpha, Rank, UseRsLora);

    /// <summary>alpha / r, or alpha / √r for rsLoRA.</summary>
    public static double ScaleOf(double alpha, long rank, bool useRsLora) =>
        rank <= 0 ? throw new ArgumentOutOfRangeException(nameof(rank), $"LoRA rank must be positive, got {rank}")
            : useRsLora ? alpha / Math.Sqrt(rank) : alpha / rank;

    /// <summary>Checks the numbers, naming the bad one.</summary>
    public void Validate()
    {
        if (Rank <= 0) throw new ArgumentException($"LoRA rank must be positive, got {Rank}");
        if (!(Alpha > 0) || double.IsInfinity(Alpha)) throw new ArgumentException($"LoRA alpha must be a positive number, got {Alpha}");
        if (Dropout is < 0 or >= 1) throw new ArgumentException($"LoRA dropout must be in [0, 1), got {Dropout}");
    }
}
