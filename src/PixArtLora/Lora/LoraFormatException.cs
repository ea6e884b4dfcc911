namespace PixArtLora.Lora;

/// <summary>A LoRA file is malformed, of an unsupported kind, or does not fit the model it is applied to.</summary>
public sealed class LoraFormatException(string message) : Exception(message);
