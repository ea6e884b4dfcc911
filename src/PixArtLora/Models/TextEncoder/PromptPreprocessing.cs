namespace PixArtLora.Models.TextEncoder;

/// <summary>
/// What happens to a prompt before it is tokenized. diffusers' PixArt pipelines (and their training scripts)
/// lower-case and strip (<c>_text_preprocessing</c> with clean_caption=False, also what clean_caption=True falls
/// back to without bs4/ftfy); the official PixArt-Σ inference script only strips; raw text is what T5 sees
/// when the tokenizer is called directly.
/// </summary>
public static class PromptPreprocessing
{
    public enum Mode
    {
        /// <summary>The text as given.</summary>
        None,
        /// <summary>Python's <c>text.lower().strip()</c>, as diffusers' PixArt pipelines do.</summary>
        LowerStrip,
        /// <summary>Python's <c>text.strip()</c>, as the official PixArt-Σ scripts do.</summary>
        Strip,
    }

    public static string Apply(string text, Mode mode) => mode switch
    {
        Mode.None => text,
        Mode.LowerStrip => PythonText.Strip(PythonText.Lower(text)),
        Mode.Strip => PythonText.Strip(text),
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown prompt preprocessing"),
    };
}
