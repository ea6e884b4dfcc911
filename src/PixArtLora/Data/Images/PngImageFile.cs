using PixArtLora.IO;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace PixArtLora.Data.Images;

/// <summary>
/// Writes generated images as 8-bit RGB PNGs carrying their <see cref="GenerationParameters"/> in a text chunk
/// named <c>parameters</c> (the convention A1111, ComfyUI importers and image browsers read), and reads them back.
/// Files are written atomically.
/// </summary>
public static class PngImageFile
{
    /// <summary>The text chunk keyword for generation parameters.</summary>
    public const string ParametersKeyword = "parameters";

    static readonly PngEncoder Encoder = new() { ColorType = PngColorType.Rgb, BitDepth = PngBitDepth.Bit8 };

    /// <summary>Encodes an image as PNG bytes, with a <c>parameters</c> chunk when <paramref name="parameters"/> is given.</summary>
    public static byte[] Encode(Image<Rgb24> image, GenerationParameters? parameters = null)
    {
        using var ms = new MemoryStream();
        image.Save(ms, Encoder);
        var png = ms.ToArray();
        return parameters == null ? png : PngTextChunks.Insert(png, ParametersKeyword, parameters.ToInfotext());
    }

    /// <summary>Saves an image to <paramref name="path"/> as PNG.</summary>
    public static void Save(Image<Rgb24> image, string path, GenerationParameters? parameters = null) =>
        AtomicFile.WriteAllBytes(path, Encode(image, parameters));

    /// <summary>Saves a tensor [3, H, W] or [1, 3, H, W] in [-1, 1] to <paramref name="path"/> as PNG (see <see cref="ImageTensors"/>).</summary>
    public static void Save(Tensor image, string path, GenerationParameters? parameters = null)
    {
        using var img = ImageTensors.ToImage(image);
        Save(img, path, parameters);
    }

    /// <summary>The raw <c>parameters</c> text of a PNG file, or null when it has none.</summary>
    public static string? ReadParametersText(string path)
    {
        var bytes = File.ReadAllBytes(path);
        return PngTextChunks.Read(bytes, path).Where(e => e.Keyword == ParametersKeyword).Select(e => e.Text).FirstOrDefault();
    }

    /// <summary>The parsed generation parameters of a PNG file, or null when it has none.</summary>
    public static GenerationParameters? ReadParameters(string path) =>
        ReadParametersText(path) is { } text ? GenerationParameters.Parse(text) : null;
}
