namespace PixArtLora.IO;

/// <summary>A safetensors file (or a checkpoint folder) is malformed or does not match the model.</summary>
public sealed class SafetensorsFormatException(string message) : Exception(message);
