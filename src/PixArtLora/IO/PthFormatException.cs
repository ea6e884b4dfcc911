namespace PixArtLora.IO;

/// <summary>
/// A PyTorch <c>.pth</c> file that this reader cannot or will not load: a malformed archive or pickle,
/// an unsupported storage type, or a pickle that refers to code outside the tensor/container allow-list.
/// </summary>
public sealed class PthFormatException : Exception
{
    public PthFormatException(string message) : base(message) { }
}
