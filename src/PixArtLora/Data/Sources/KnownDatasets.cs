namespace PixArtLora.Data.Sources;

/// <summary>A dataset reachable by a short name on the command line (<c>--dataset pokemon</c>).</summary>
/// <param name="ShortName">The name users type.</param>
/// <param name="HubId">The Hugging Face dataset repository.</param>
/// <param name="CaptionColumn">The caption column used unless --caption_column overrides it.</param>
/// <param name="ImageColumn">The image column used unless --image_column overrides it.</param>
public sealed record KnownDataset(string ShortName, string HubId, string CaptionColumn, string ImageColumn = "image");

/// <summary>Short dataset names. The pokemon captions are BLIP captions in English (en_text) and Chinese (zh_text).</summary>
public static class KnownDatasets
{
    /// <summary>Every short name.</summary>
    public static IReadOnlyList<KnownDataset> All { get; } =
    [
        new("pokemon", "svjack/pokemon-blip-captions-en-zh", "en_text"),
    ];

    /// <summary>The dataset with this short name (case-insensitive), or null.</summary>
    public static KnownDataset? Find(string name) =>
        All.FirstOrDefault(d => string.Equals(d.ShortName, name, StringComparison.OrdinalIgnoreCase));
}
