using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace PixArtLora.Inference;

/// <summary>
/// A contact sheet: the images of a run side by side in a grid (as near square as the count allows, row-major, in
/// generation order), each in a cell of the largest image's size on a black background.
/// </summary>
public static class ContactSheet
{
    /// <summary>Columns for <paramref name="count"/> images: ⌈√count⌉.</summary>
    public static int ColumnsFor(int count) => Math.Max(1, (int)Math.Ceiling(Math.Sqrt(count)));

    /// <summary>Composes <paramref name="images"/> into one image with <paramref name="columns"/> columns (default <see cref="ColumnsFor"/>).</summary>
    public static Image<Rgb24> Compose(IReadOnlyList<Image<Rgb24>> images, int? columns = null)
    {
        if (images.Count == 0) throw new ArgumentException("a contact sheet needs at least one image");
        int cols = Math.Min(columns ?? ColumnsFor(images.Count), images.Count);
        if (cols < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "at least one column");
        int rows = (images.Count + cols - 1) / cols;
        int cellW = images.Max(i => i.Width), cellH = images.Max(i => i.Height);
        var sheet = new Image<Rgb24>(cellW * cols, cellH * rows, new Rgb24(0, 0, 0));
        sheet.Mutate(ctx =>
        {
            for (int i = 0; i < images.Count; i++)
                ctx.DrawImage(images[i], new Point(i % cols * cellW, i / cols * cellH), 1f);
        });
        return sheet;
    }
}
