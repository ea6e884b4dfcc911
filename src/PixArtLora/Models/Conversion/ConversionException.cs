namespace PixArtLora.Models.Conversion;

/// <summary>A checkpoint that cannot be converted: unknown or missing keys, shapes that do not split, a config that does not fit.</summary>
public sealed class ConversionException : Exception
{
    public ConversionException(string message) : base(message) { }
}
