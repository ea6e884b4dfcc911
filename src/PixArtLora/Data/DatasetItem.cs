namespace PixArtLora.Data;

/// <summary>
/// One training example: where its image is, its caption(s), and its original size (from the image header or
/// the label file, so that bucketing never decodes pixels).
/// </summary>
/// <param name="Index">Position in <see cref="ImageDataset.Items"/>; samplers and randomness key on it.</param>
/// <param name="Image">The encoded image.</param>
/// <param name="Caption">The caption (JSON labels: <c>prompt</c>).</param>
/// <param name="AlternateCaption">A second caption picked with probability 1 − real_prompt_ratio (JSON labels: <c>sharegpt4v</c>); null when absent.</param>
/// <param name="Width">Original width in pixels.</param>
/// <param name="Height">Original height in pixels.</param>
public sealed record DatasetItem(int Index, IImageSource Image, string Caption, string? AlternateCaption, int Width, int Height);

/// <summary>The items of a dataset after bad rows were skipped, and the report of what was skipped.</summary>
public sealed class ImageDataset(string description, IReadOnlyList<DatasetItem> items, DatasetLoadReport report)
{
    /// <summary>What was opened, e.g. "svjack/pokemon-blip-captions-en-zh (1 parquet file)".</summary>
    public string Description { get; } = description;

    /// <summary>Usable items; <see cref="DatasetItem.Index"/> equals the position in this list.</summary>
    public IReadOnlyList<DatasetItem> Items { get; } = items;

    /// <summary>Rows read, kept and skipped (with reasons).</summary>
    public DatasetLoadReport Report { get; } = report;

    /// <summary>Number of usable items.</summary>
    public int Count => Items.Count;
}
