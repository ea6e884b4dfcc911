using System.CommandLine;

namespace PixArtLora.Cli;

/// <summary>
/// Options spelled both ways users know them: the reference scripts' <c>--snake_case</c> and the
/// usual <c>--kebab-case</c>. Give the snake_case name; the kebab alias is added automatically.
/// </summary>
public static class CliOptions
{
    public static Option<T> Create<T>(string snakeName, string description, params string[] extraAliases)
    {
        if (!snakeName.StartsWith("--")) throw new ArgumentException("option names start with --", nameof(snakeName));
        var aliases = new List<string>(extraAliases);
        string kebab = snakeName.Replace('_', '-');
        if (kebab != snakeName) aliases.Add(kebab);
        return new Option<T>(snakeName, aliases.ToArray()) { Description = description };
    }

    public static Option<T> Create<T>(string snakeName, string description, T defaultValue, params string[] extraAliases)
    {
        var o = Create<T>(snakeName, description, extraAliases);
        o.DefaultValueFactory = _ => defaultValue;
        return o;
    }
}
